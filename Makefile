# One entry point for users and CI: `make test`, `make demo`, `make bench` (README).
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# 2-core dev/CI machines: keep torch and BLAS from oversubscribing.
export OMP_NUM_THREADS ?= 2
export PYTHONUNBUFFERED = 1

.PHONY: setup test lint demo demo-long bench clean

setup: $(STAMP)

$(STAMP): requirements.txt setup.py
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "Installing pinned dependencies into $(VENV) (first run only)..."
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

lint: $(STAMP)
	@$(VENV)/bin/ruff check .

test: lint
	@$(PY) -m pytest -q

demo: $(STAMP)
	@$(PY) scripts/demo.py

demo-long: $(STAMP)
	@$(PY) scripts/demo.py --long

bench: $(STAMP)
	@$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache .ruff_cache *.egg-info
