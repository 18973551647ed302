"""Fixtures of the launch tests (helpers in robot_commands.py): the underlay, a built workspace, a model.

Without ../shared/ros2_src (the sources of launch, launch_ros and ros2cli, which have no PyPI wheels) every
test here skips with that reason; `make test` builds the underlay (`make ros-underlay`) before pytest.
"""
from __future__ import annotations

import os

import pytest
from robot_commands import ROS2_SRC, UNDERLAY_SETUP, LaunchProcess, colcon_workspace, sourced_env
from ros_harness import DOMAIN_ID

from depth_kd_ros.testing.synthetic_model import build_synthetic_onnx


@pytest.fixture(scope='session')
def underlay_env() -> dict[str, str]:
    """The environment of `source .ros_underlay/setup.bash`, on this session's private DDS domain."""
    if not UNDERLAY_SETUP.exists():
        if not ROS2_SRC.is_dir():
            pytest.skip(f'{ROS2_SRC} is absent: launch, launch_ros and ros2cli have no PyPI wheels, and their '
                        'sources are needed to build them (make ros-underlay)')
        pytest.skip('the ROS 2 underlay is not built: run `make ros-underlay` (make test does)')
    base = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN_ID), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
                PYTHONUNBUFFERED='1')
    return sourced_env(UNDERLAY_SETUP, base)


@pytest.fixture(scope='session')
def workspace_env(underlay_env, tmp_path_factory) -> dict[str, str]:
    """`colcon build --packages-select depth_kd_ros` (a plain install) in a fresh workspace, sourced."""
    return colcon_workspace(tmp_path_factory.mktemp('ros2_ws'), underlay_env)


@pytest.fixture(scope='session')
def tiny_model(tmp_path_factory) -> str:
    """depth = 2 + 4 * gray metres at 64x48, focal 50 px (the node tests' model)."""
    return build_synthetic_onnx(str(tmp_path_factory.mktemp('launch_model') / 'tiny.onnx'))


@pytest.fixture
def launch(workspace_env, tmp_path):
    """launch(*args) -> LaunchProcess; every group still alive at the end of the test is killed."""
    started: list[LaunchProcess] = []

    def start(*args: str) -> LaunchProcess:
        started.append(LaunchProcess(workspace_env, tmp_path / f'launch{len(started)}.log', *args))
        return started[-1]

    yield start
    for process in started:
        process.kill()
