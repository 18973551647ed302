"""The runtime's layers (docs/design.md section 1) and the absence of import cycles in it, read from the sources
with ast (import_graph.py: function-local imports count, they hid a cycle before; TYPE_CHECKING blocks do not).
"""
from __future__ import annotations

from pathlib import Path

import pytest
from import_graph import cycles, graph, imported_names, modules

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = 'depth_kd_ros'
#: the ROS 2 client library and the message packages built on it: only node/ imports them (the offline tool
#: writes bags with rosbags' classes; cv_bridge, used when installed, is neither)
ROS_CLIENT = ('rclpy', 'rcl_interfaces', 'sensor_msgs', 'diagnostic_msgs', 'std_msgs', 'builtin_interfaces')
#: the shells: entry points that nothing else in the package imports
SHELLS = ('node', 'offline')
#: what a layer may import from the rest of the package (its own modules aside)
MAY_IMPORT = {'io': (), 'camera': ('io',), 'backends': ('io', 'model_file')}


def _layer(module: str) -> str:
    """The runtime layer of a module: its subpackage (``io``, ``camera``, ...) or its own name at the top."""
    return module.split('.')[1] if '.' in module else ''


@pytest.fixture(scope='module')
def runtime() -> dict[str, set[str]]:
    return graph(ROOT / RUNTIME)


def test_only_the_node_imports_the_ros_client_library():
    """rclpy and the ROS message packages in node/ only: the frame path, the offline tool and training run without
    a ROS installation."""
    outside = {name: sorted(imported for imported in imported_names(name, path)
                            if imported.split('.')[0] in ROS_CLIENT)
               for name, path in modules(ROOT / RUNTIME).items() if _layer(name) != 'node'}
    assert not {name: found for name, found in outside.items() if found}


def test_nothing_imports_the_node_or_the_offline_tool(runtime):
    """node/ and offline/ are shells around the rest: an arrow into them from elsewhere would tie the library to
    one entry point."""
    inward = sorted(f'{module} -> {target}' for module, targets in runtime.items() for target in targets
                    if _layer(target) in SHELLS and _layer(module) != _layer(target))
    assert not inward


@pytest.mark.parametrize('layer', sorted(MAY_IMPORT))
def test_lower_layers_import_only_what_is_below_them(runtime, layer):
    """io/ imports nothing else of the package; camera/ only io/; backends/ only io/ and the model-file contract."""
    allowed = {layer, *MAY_IMPORT[layer]}
    modules = [module for module in runtime if _layer(module) == layer]
    assert modules, f'{RUNTIME}/{layer}/ is missing'
    upward = sorted(f'{module} -> {target}' for module in modules for target in runtime[module]
                    if _layer(target) not in allowed)
    assert not upward


def test_no_import_cycles(runtime):
    """No module imports, directly or through others, a module that imports it: a cycle closed by a function-local
    import fails only on the call that runs it. (training/disdepth has its own test, test_training_layers.py.)"""
    assert not cycles(runtime)
