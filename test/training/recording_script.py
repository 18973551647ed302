"""scripts/synthetic_recording.py loaded as a module (scripts/ is not a package), for the recordings tests."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_module(path: Path, name: str):
    """The Python file ``path`` imported as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPT = load_module(ROOT / 'scripts' / 'synthetic_recording.py', 'synthetic_recording')
