# One entry point for users and CI: `make test`, `make demo`, `make bench` (README).
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# 2-core dev/CI machines: keep torch and BLAS from oversubscribing.
export OMP_NUM_THREADS ?= 2
export PYTHONUNBUFFERED = 1

# ROS 2 sources without PyPI wheels (launch, launch_ros, ros2cli, composition_interfaces), built with colcon
# into ROS_UNDERLAY for test/launch: `source .ros_underlay/setup.bash` then gives ros2, ros2 launch, launch_testing.
ROS2_SRC          ?= ../shared/ros2_src
ROS_UNDERLAY      := .ros_underlay
ROS_UNDERLAY_STAMP := $(ROS_UNDERLAY)/.built
# message_filters is left out: its CMake build needs rclcpp, which has no wheel (ROS2_SRC/README.md)
ROS_UNDERLAY_SOURCES := launch launch_ros rcl_interfaces ros2cli

.PHONY: setup test lint demo demo-long bench clean ros-underlay

setup: $(STAMP)

# the runtime (setup.py) and, in this development venv only, the training library (training/pyproject.toml)
$(STAMP): requirements.txt setup.py training/pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "Installing pinned dependencies into $(VENV) (first run only)..."
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@$(PY) -m pip install -q --disable-pip-version-check --no-deps -e . -e training
	@touch $(STAMP)

lint: $(STAMP)
	@$(VENV)/bin/ruff check .

test: lint ros-underlay
	@$(PY) -m pytest -q

ifneq ($(wildcard $(ROS2_SRC)/README.md),)
ros-underlay: $(ROS_UNDERLAY_STAMP)
else
ros-underlay:
	@echo "ros-underlay: $(ROS2_SRC) is absent; the launch tests (test/launch) will skip"
endif

# Copied first: CI lays ../shared read-only. The wheels' CMake files are fixed first (their builder's paths).
$(ROS_UNDERLAY_STAMP): $(STAMP) scripts/fix_ros_wheel_cmake.py $(wildcard $(ROS2_SRC)/*/*/package.xml)
	@echo "Building the ROS 2 underlay from $(ROS2_SRC) into $(ROS_UNDERLAY) with colcon (first run only)..."
	@rm -rf $(ROS_UNDERLAY) && mkdir -p $(ROS_UNDERLAY)/src
	@cp -R $(addprefix $(ROS2_SRC)/,$(ROS_UNDERLAY_SOURCES)) $(ROS_UNDERLAY)/src/ && chmod -R u+w $(ROS_UNDERLAY)/src
	@$(PY) scripts/fix_ros_wheel_cmake.py
	@venv=$(abspath $(VENV)); cd $(ROS_UNDERLAY) && start=$$(date +%s) && \
	  if AMENT_PREFIX_PATH=$$venv CMAKE_PREFIX_PATH=$$venv PATH=$$venv/bin:$$PATH $$venv/bin/colcon build \
	      --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE=$$venv/bin/python >build.log 2>&1; \
	  then echo "ros-underlay: built in $$(( $$(date +%s) - start )) s (log: $(ROS_UNDERLAY)/build.log)"; \
	  else tail -n 40 build.log; echo "ros-underlay: colcon build failed (log: $(ROS_UNDERLAY)/build.log)"; exit 1; fi
	@printf '%s\n' '# The project venv and the ROS 2 underlay in one: source .ros_underlay/setup.bash' \
	  'export PATH="$(abspath $(VENV))/bin:$$PATH"' \
	  'export AMENT_PREFIX_PATH="$(abspath $(VENV))$${AMENT_PREFIX_PATH:+:$$AMENT_PREFIX_PATH}"' \
	  '. "$(abspath $(ROS_UNDERLAY))/install/setup.bash"' >$(ROS_UNDERLAY)/setup.bash
	@touch $@

demo: $(STAMP)
	@$(PY) scripts/demo.py

demo-long: $(STAMP)
	@$(PY) scripts/demo.py --long

bench: $(STAMP)
	@$(PY) bench/run_all.py

# Robot stacks: the runtime's tests (no torch, no training code) also run on the library versions robots have,
# each in a venv built from its pins with the Python of that Ubuntu release (docs/development.md, "Robot stacks"):
# humble = Ubuntu 22.04 / Humble / JetPack 6 (Python 3.10), jazzy = Ubuntu 24.04 / Jazzy (Python 3.12).
# `make test STACKS=` leaves them out; a stack whose Python is missing stops `make test` with what to install.
STACKS            ?= humble jazzy
PYENV_ROOT        ?= $(HOME)/.pyenv
STACK_PYTHON_VERSION_humble := 3.10
STACK_PYTHON_VERSION_jazzy  := 3.12
# python3.X from pyenv, else from PATH; override with e.g. STACK_PYTHON_humble=/usr/bin/python3.10
stack_python = $(or $(STACK_PYTHON_$(1)),$(lastword $(sort $(wildcard \
    $(PYENV_ROOT)/versions/$(STACK_PYTHON_VERSION_$(1)).*/bin/python$(STACK_PYTHON_VERSION_$(1))))),$(shell \
    command -v python$(STACK_PYTHON_VERSION_$(1))))
RUNTIME_TESTS     := test/unit test/ros test/offline test/lint/test_runtime_contract.py

# The runtime's tests with the CPU made scarce: one busy loop pinned to each core beside them (ended on exit), so the
# suite gets about half the machine. `make test-scarce-cpu PYTEST_ARGS=--slow-frame-scale=3` passes pytest options.
SCARCE_CPU_TESTS  := test/unit test/ros test/offline
.PHONY: test-scarce-cpu
test-scarce-cpu: $(STAMP)
	@loops=; for cpu in $$(seq 0 $$(($$(nproc) - 1))); do \
	  taskset -c $$cpu sh -c 'while :; do :; done' & loops="$$loops $$!"; done; \
	trap 'kill $$loops 2>/dev/null' EXIT; trap 'exit 130' INT TERM; \
	echo "test-scarce-cpu: a busy loop pinned to each of the $$(nproc) cores (pids$$loops) beside the tests"; \
	$(PY) -m pytest -q $(PYTEST_ARGS) $(SCARCE_CPU_TESTS); status=$$?; \
	echo "test-scarce-cpu: load average at the end: $$(cut -d' ' -f1-3 /proc/loadavg)"; exit $$status

.PHONY: test-stacks $(STACKS:%=test-stack-%) clean-stacks
test: test-stacks
clean: clean-stacks

test-stacks: $(STACKS:%=test-stack-%)

ifneq ($(strip $(STACKS)),)
STACK_VERSIONS := import sys, numpy, cv2, onnxruntime, yaml; print(f'Python {sys.version.split()[0]}, numpy \
  {numpy.__version__}, OpenCV {cv2.__version__}, onnxruntime {onnxruntime.__version__}, PyYAML {yaml.__version__}')

$(STACKS:%=test-stack-%): test-stack-%: .venv-%/.installed
	@echo "Runtime tests on the $* stack ($$(.venv-$*/bin/python -c "$(STACK_VERSIONS)"))"
	@.venv-$*/bin/python -m pytest -q $(RUNTIME_TESTS)

$(STACKS:%=.venv-%/.installed): .venv-%/.installed: requirements-%.txt requirements-build.txt setup.py
	@python=$(call stack_python,$*); if [ -z "$$python" ]; then \
	  echo "make test: the $* stack needs Python $(STACK_PYTHON_VERSION_$*) (pyenv install $(STACK_PYTHON_VERSION_$*), or apt/deadsnakes python$(STACK_PYTHON_VERSION_$*)-venv); make test STACKS= runs without the robot stacks"; \
	  exit 1; fi; \
	test -x .venv-$*/bin/python || $$python -m venv .venv-$*
	@echo "Installing the $* stack's pinned dependencies into .venv-$* (first run only)..."
	@.venv-$*/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
	@.venv-$*/bin/python -m pip install -q --disable-pip-version-check --build-constraint requirements-build.txt \
	  -r requirements-$*.txt
	@.venv-$*/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@
endif

clean-stacks:
	rm -rf $(STACKS:%=.venv-%)

clean:
	rm -rf $(VENV) $(ROS_UNDERLAY) demo_out .pytest_cache .ruff_cache *.egg-info
