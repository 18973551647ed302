"""The package as a robot user builds it: colcon build in a workspace, ros2 pkg, the launch file's arguments."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from robot_commands import colcon_workspace, run

from depth_kd_ros.backends import BACKENDS
from depth_kd_ros.params import SPECS

EXECUTABLES = {'depth_kd_ros mono_depth_node', 'depth_kd_ros mono_depth_offline'}
LAUNCH_ARGUMENTS = {'model_path', 'backend', 'image_topic', 'camera_info_topic', 'namespace', 'params_file', 'rviz',
                    'managed', 'autostart'}


def _installed_share(env: dict[str, str]) -> Path:
    """ros2 sees both executables, and the launch file imports and declares every argument (--show-args runs
    generate_launch_description), its backend choices those of the node's parameter (empty: the params file's);
    returns the package's share folder."""
    assert set(run(['ros2', 'pkg', 'executables', 'depth_kd_ros'], env).splitlines()) == EXECUTABLES
    shown = run(['ros2', 'launch', '--show-args', 'depth_kd_ros', 'mono_depth.launch.py'], env)
    assert set(re.findall(r"^\s+'(\w+)':$", shown, re.MULTILINE)) == LAUNCH_ARGUMENTS, shown
    backend = re.search(r"^\s+'backend':\n.*Valid choices are: (\[.*\])$", shown, re.MULTILINE)
    assert backend, shown
    assert ast.literal_eval(backend.group(1)) == ['', *SPECS['backend'].metadata['choices']] == ['', *BACKENDS]
    return Path(run(['ros2', 'pkg', 'prefix', '--share', 'depth_kd_ros'], env).strip())


def test_colcon_build_installs_the_runtime_executables_and_launch_file(workspace_env):
    """`colcon build --packages-select depth_kd_ros`: the runtime only (no training code), launch and config."""
    share = _installed_share(workspace_env)
    assert {p.name for p in (share / 'launch').iterdir()} == {'mono_depth.launch.py'}
    assert {'mono_depth.yaml', 'mono_depth.rviz', 'fastdds_large_outputs.xml'} <= {p.name for p in
                                                                                  (share / 'config').iterdir()}
    site = next((share.parents[1] / 'lib').glob('python3*/site-packages'))
    assert (site / 'depth_kd_ros' / 'node' / 'mono_depth_node.py').is_file()
    assert not (site / 'depth_kd_ros' / 'testing').exists()  # the tests' synthetic model stays in the checkout
    assert not [p.name for p in site.iterdir() if p.name.startswith(('training', 'disdepth', 'test'))]


def test_colcon_symlink_install_links_the_sources(underlay_env, tmp_path):
    """--symlink-install (the usual development build): the same commands work, the launch file is a link."""
    share = _installed_share(colcon_workspace(tmp_path, underlay_env, '--symlink-install'))
    launch_file = share / 'launch' / 'mono_depth.launch.py'
    assert launch_file.is_symlink()
    assert launch_file.resolve() == (tmp_path / 'src' / 'depth_kd_ros' / 'launch' / 'mono_depth.launch.py').resolve()
