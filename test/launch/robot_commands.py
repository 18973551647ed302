"""The robot's own commands for the launch tests: colcon build, ros2 pkg, ros2 launch, run for real.

launch, launch_ros and ros2cli have no PyPI wheels: `make ros-underlay` builds their Jazzy sources from
../shared/ros2_src with colcon into .ros_underlay/, whose setup.bash also puts the project venv (rclpy, Fast
DDS, colcon) on the path. Launch processes get a session of their own (setsid), so a signal to their process
group is what a terminal's Ctrl-C sends to a foreground job.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UNDERLAY_SETUP = ROOT / '.ros_underlay' / 'setup.bash'
ROS2_SRC = ROOT.parent / 'shared' / 'ros2_src'
# what a robot user clones minus local build and run outputs
NOT_PACKAGE = shutil.ignore_patterns('.git', '.venv', '.ros_underlay', 'build', 'install', 'log', 'demo_out', 'runs',
                                     '__pycache__', '*.egg-info', '.pytest_cache', '.ruff_cache')


def sourced_env(setup_bash: Path, base: dict[str, str]) -> dict[str, str]:
    """The environment after `source setup_bash` in bash, starting from ``base``."""
    out = subprocess.run(['bash', '-c', 'source "$0" && env -0', str(setup_bash)], env=base, check=True,
                         capture_output=True, timeout=60).stdout.decode()
    return dict(item.split('=', 1) for item in out.split('\0') if '=' in item)


def run(command: list[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 120.0) -> str:
    """Run a command to completion; its combined output, or an AssertionError that shows it."""
    result = subprocess.run(command, check=False, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f'{" ".join(command)} exited {result.returncode}:\n{output[-4000:]}'
    return output


def colcon_workspace(root: Path, underlay_env: dict[str, str], *extra_args: str) -> dict[str, str]:
    """A workspace at ``root`` with this package in src/, built as a robot user does; its sourced environment."""
    shutil.copytree(ROOT, root / 'src' / 'depth_kd_ros', ignore=NOT_PACKAGE)
    run(['colcon', 'build', '--packages-select', 'depth_kd_ros', *extra_args], underlay_env, cwd=root)
    return sourced_env(root / 'install' / 'setup.bash', underlay_env)


class LaunchProcess:
    """`ros2 launch ARGS` in a session of its own (setsid), its output in a file, its process group signalled."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str) -> None:
        self.log_path = log_path
        # launch's logs and launch_ros's parameter files (left in the temp folder) stay with the test
        env = dict(env, TMPDIR=str(log_path.parent), ROS_LOG_DIR=str(log_path.parent / 'ros_log'))
        with log_path.open('w') as log:
            self.process = subprocess.Popen(['ros2', 'launch', *args], env=env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def signal_group(self, signum: int) -> None:
        """What a terminal sends on Ctrl-C: the signal to every process of the foreground job."""
        os.killpg(self.process.pid, signum)

    def group_alive(self) -> bool:
        """Whether any process of the launch's group (its children included) still runs."""
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def finish(self, timeout: float = 30.0) -> tuple[int | None, str]:
        """Wait for `ros2 launch` to exit; (exit code or None when it did not, output). Never leaves a process."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        deadline = time.monotonic() + 30.0  # its children may take a moment after it (a busy machine: longer)
        while self.group_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        return code, self.log_path.read_text()

    def kill(self) -> None:
        if self.group_alive():
            self.signal_group(signal.SIGKILL)
        self.process.wait(10)
