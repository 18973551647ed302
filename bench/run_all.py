"""`make bench`: run every benchmark script, then refresh the docs' result tables from their JSON.

    python bench/run_all.py                  # every benchmark (about an hour on 2 CPU cores), then tables
    python bench/run_all.py --only node      # some benchmarks, then tables
    python bench/run_all.py --tables-only    # the tables from the committed bench/results/*.json

Each benchmark writes bench/results/<name>.json itself; the tables are rendered by bench/readme_tables.py
between ``<!-- bench:NAME -->`` markers in README.md and docs/results.md, so every number there comes from a
file here (and docs/node.md's parameter table from depth_kd_ros/params.py).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from readme_tables import DOCUMENTS, update_tables

ROOT = Path(__file__).resolve().parents[1]

# name -> script arguments; ordered cheap to expensive
BENCHMARKS = {
    'synthetic': ['bench/bench_synthetic.py'],
    'models': ['bench/bench_models.py'],
    'node': ['bench/bench_node.py'],
    'teacher': ['bench/bench_teacher.py'],
    'offline': ['bench/bench_offline.py'],
    'recordings': ['bench/bench_recordings.py'],
    'distill': ['bench/bench_distill.py'],
    'demo': ['scripts/demo.py', '--out', 'runs/bench_demo', '--results', 'bench/results/demo.json'],
}


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--only', nargs='+', choices=sorted(BENCHMARKS), help='run only these benchmarks')
    parser.add_argument('--tables-only', action='store_true', help='do not run anything, refresh the tables')
    args = parser.parse_args(argv)
    failed = []
    if not args.tables_only:
        for name in args.only or BENCHMARKS:
            print(f'==> bench {name}: {" ".join(BENCHMARKS[name])}', flush=True)
            started = time.monotonic()
            result = subprocess.run([sys.executable, *BENCHMARKS[name]], cwd=ROOT, check=False)
            print(f'    {name}: exit {result.returncode} after {time.monotonic() - started:.0f} s', flush=True)
            if result.returncode != 0:
                failed.append(name)
    for document in DOCUMENTS:
        updated = update_tables(ROOT / document, ROOT / 'bench' / 'results')
        print(f'{document}: tables refreshed: {", ".join(updated) or "none"}')
    if failed:
        print(f'failed benchmarks (their old JSON was kept): {", ".join(failed)}', file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
