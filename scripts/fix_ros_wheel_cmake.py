"""Point the ROS 2 wheels' exported CMake files at this Python environment (make ros-underlay).

The ros-* wheels on PyPI were built in a manylinux container; their exported `share/*/cmake/*.cmake`
files keep that builder's paths, e.g. INTERFACE_INCLUDE_DIRECTORIES
"/opt/python/cp311-cp311/include/python3.11;/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include",
so CMake refuses to configure any rosidl package (composition_interfaces) against them. This rewrites
those paths to the running interpreter's include folder and purelib (sysconfig). Idempotent: a file
without builder paths is left untouched. Source: ../shared/ros2_src/README.md, "what needed care".

Usage: .venv/bin/python scripts/fix_ros_wheel_cmake.py   (prints how many files it changed)
"""
from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

# /opt/python/cp311-cp311/include/python3.11 and /opt/python/cp311-cp311/lib/python3.11/site-packages
BUILDER_INCLUDE = re.compile(r'/opt/python/cp\d+-cp\d+t?/include/python\d+\.\d+t?')
BUILDER_PURELIB = re.compile(r'/opt/python/cp\d+-cp\d+t?/lib/python\d+\.\d+t?/site-packages')


def fix_cmake_files(share: Path, include: str, purelib: str) -> list[Path]:
    """Rewrite builder paths in every share/**/*.cmake under ``share``; returns the files changed."""
    changed = []
    for path in sorted(share.glob('*/cmake/*.cmake')):
        text = path.read_text()
        fixed = BUILDER_PURELIB.sub(purelib, BUILDER_INCLUDE.sub(include, text))
        if fixed != text:
            path.write_text(fixed)
            changed.append(path)
    return changed


def main() -> int:
    # resolved: a venv reached through a symlink (a worktree's .venv) must not bake that link in
    include, purelib = (str(Path(sysconfig.get_paths()[key]).resolve()) for key in ('include', 'purelib'))
    share = Path(sys.prefix).resolve() / 'share'
    changed = fix_cmake_files(share, include, purelib)
    print(f'fix_ros_wheel_cmake: {len(changed)} CMake files under {share} now use {include} and {purelib}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
