"""Files shipped beside the runtime (config/): found in the source tree or under an install's share folder.

colcon installs them under ``<prefix>/share/depth_kd_ros/`` and the module under
``<prefix>/lib/pythonX.Y/site-packages``; pip under the venv prefix (setup.py's data_files).
"""
from __future__ import annotations

import sys
from pathlib import Path

PACKAGE = 'depth_kd_ros'


def share_file(relative: Path) -> Path | None:
    """``relative`` (e.g. config/mono_depth.yaml) of the source tree, else of an install; None if neither has it."""
    here = Path(__file__).resolve()
    candidates = [here.parents[2] / relative]  # the source tree: <checkout>/depth_kd_ros/io/package_files.py
    candidates += [prefix / 'share' / PACKAGE / relative for prefix in here.parents]
    candidates.append(Path(sys.prefix) / 'share' / PACKAGE / relative)
    return next((candidate for candidate in candidates if candidate.is_file()), None)
