"""Fixtures of the training tests (the tiny run itself is in tiny_run.py, a unique module name)."""
from __future__ import annotations

import pytest
import torch
from tiny_run import TINY

from disdepth.config import Config, config_from_dict


@pytest.fixture
def tiny_cfg() -> Config:
    return config_from_dict(TINY)


@pytest.fixture(autouse=True)
def _few_threads():
    """2 shared cores: one intra-op thread keeps the suite from oversubscribing."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
