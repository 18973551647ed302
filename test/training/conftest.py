"""Fixtures of the training tests (the tiny run itself is in tiny_run.py, a unique module name)."""
from __future__ import annotations

import pytest
from tiny_run import TINY

from disdepth.config import Config, config_from_dict


@pytest.fixture
def tiny_cfg() -> Config:
    return config_from_dict(TINY)
