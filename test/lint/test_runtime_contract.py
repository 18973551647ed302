"""Platform contracts that no unit test would notice breaking (docs/design.md section 4, style item 13).

The robot runs ROS 2 Humble on Python 3.10, may have no PyTorch, and has rclpy only in the node.
"""
import ast
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_FILES = sorted((ROOT / 'depth_kd_ros').rglob('*.py')) + sorted((ROOT / 'launch').glob('*.py'))
RUNTIME_MODULES = sorted('.'.join(('depth_kd_ros', *p.relative_to(ROOT / 'depth_kd_ros').with_suffix('').parts))
                         .removesuffix('.__init__') for p in (ROOT / 'depth_kd_ros').rglob('*.py'))
ALL_SOURCES = RUNTIME_FILES + sorted((ROOT / 'training').rglob('*.py')) + sorted((ROOT / 'scripts').glob('*.py'))
# Python 3.11+ names that a 3.10 robot lacks; the parser alone does not catch library additions.
PY311_ONLY = ('StrEnum', 'tomllib', 'typing.Self', 'from typing import Self', 'ExceptionGroup', 'TaskGroup')


@pytest.mark.parametrize('path', ALL_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_parses_as_python_3_10(path):
    """Every source file must parse with the Python 3.10 grammar (ROS 2 Humble, JetPack 6)."""
    ast.parse(path.read_text(), filename=str(path), feature_version=(3, 10))


@pytest.mark.parametrize('path', ALL_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_python_3_11_only_library_names(path):
    """Library additions of 3.11+ pass the 3.10 parser but fail at import on the robot."""
    text = path.read_text()
    assert not [name for name in PY311_ONLY if name in text]


def _python_3_10():
    """A working Python 3.10 interpreter, or None (pyenv shims exist without the version installed)."""
    candidates = [shutil.which('python3.10'), *map(str, Path.home().glob('.pyenv/versions/3.10*/bin/python3.10'))]
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, '--version'], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return candidate
    return None


def test_runtime_compiles_with_real_python_3_10():
    """Byte-compile the runtime with a real 3.10 interpreter when one is installed."""
    interpreter = _python_3_10()
    if interpreter is None:
        pytest.skip('no working python3.10 interpreter on this machine; the 3.10 grammar check still ran')
    files = [str(p) for p in RUNTIME_FILES]
    result = subprocess.run([interpreter, '-m', 'py_compile', *files], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr


def _import_in_fresh_interpreter(modules: list[str], forbidden: tuple[str, ...]) -> subprocess.CompletedProcess:
    """Import ``modules`` in a new process of this interpreter; it fails if one of ``forbidden`` got imported."""
    code = (
        'import importlib, sys\n'
        f'for name in {modules!r}:\n'
        '    importlib.import_module(name)\n'
        f'leaked = [m for m in {forbidden!r} if m in sys.modules]\n'
        "assert not leaked, leaked\n")
    return subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, check=False)


def test_runtime_imports_without_torch_or_rclpy():
    """Importing the plain runtime modules must not pull in torch (robot may lack it) or rclpy."""
    plain = [m for m in RUNTIME_MODULES if not m.startswith('depth_kd_ros.node.')]  # node/ is rclpy's (test_layers)
    result = _import_in_fresh_interpreter(plain, ('torch', 'rclpy', 'disdepth'))
    assert result.returncode == 0, result.stderr


def test_every_runtime_module_imports_on_this_stack():
    """Every runtime module, the node included, imports with this interpreter and these library versions:
    `make test` runs this on the main venv and on the robot stacks (Python 3.10 with Ubuntu 22.04's numpy and
    OpenCV, Python 3.12 with Ubuntu 24.04's), where no torch is installed."""
    result = _import_in_fresh_interpreter(RUNTIME_MODULES, ('torch', 'disdepth'))
    assert result.returncode == 0, result.stderr


# rosdep keys of the non-ROS modules the runtime imports (ROS packages are imported under their own name)
ROSDEP_KEYS = {'numpy': 'python3-numpy', 'cv2': 'python3-opencv', 'yaml': 'python3-yaml', 'tqdm': 'python3-tqdm'}
# no rosdep keys: the README's robot install pips them (onnx reads the model file, onnxruntime is the default
# backend; both are imported lazily, where they are used)
PIP_ONLY = ('onnx', 'onnxruntime', 'rosbags')


def _module_level_imports(path: Path) -> tuple[set[str], set[str]]:
    """(unconditional, optional) top-level names that ``path`` imports at module level; optional ones sit in
    a ``try`` that catches ImportError. Imports inside functions (a chosen backend's) are neither."""
    unconditional, optional = set(), set()

    def visit(statements, guarded):
        for node in statements:
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, 'level', 0):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                (optional if guarded else unconditional).update(n.split('.')[0] for n in names)
            elif isinstance(node, ast.Try):
                catches = {getattr(h.type, 'id', None) for h in node.handlers}
                visit(node.body, guarded or bool(catches & {'ImportError', 'ModuleNotFoundError'}))
                visit(node.orelse + node.finalbody, guarded)

    visit(ast.parse(path.read_text()).body, False)
    third_party = {n for n in unconditional | optional if n not in sys.stdlib_module_names and n != 'depth_kd_ros'}
    return unconditional & third_party, optional & third_party


def test_package_xml_declares_what_the_runtime_imports_and_nothing_optional():
    """colcon/rosdep read package.xml: format 3, ament_python; every package the node, launch file and offline
    tool import unconditionally is an exec_depend, and none they treat as optional (try/except ImportError) is.

    package.xml made cv_bridge a hard dependency while the node imports it only if present; rcl_interfaces,
    imported by the node, was missing.
    """
    root = ET.parse(ROOT / 'package.xml').getroot()
    assert root.get('format') == '3'
    assert root.findtext('name') == 'depth_kd_ros'
    depends = {e.text for e in root if e.tag.endswith('depend')}
    required, optional = set(), set()
    for path in RUNTIME_FILES:
        unconditional, guarded = _module_level_imports(path)
        required |= {ROSDEP_KEYS.get(name, name) for name in unconditional if name not in PIP_ONLY}
        optional |= {ROSDEP_KEYS.get(name, name) for name in guarded}
    assert {'rclpy', 'sensor_msgs', 'python3-numpy', 'cv_bridge'} <= required | optional  # the scan sees them
    assert required <= depends, f'imported but not declared: {sorted(required - depends)}'
    assert not optional & depends, f'optional but declared as needed: {sorted(optional & depends)}'
    assert root.find('export/build_type').text == 'ament_python'


def test_robot_install_in_readme_installs_the_pip_only_dependencies():
    """The README's robot commands pip-install what has no rosdep key: onnx, ONNX Runtime (the default
    backend, which they left out), rosbags."""
    section = (ROOT / 'README.md').read_text().split('## On the robot', 1)[1].split('\n## ', 1)[0]
    installed = {word for line in section.splitlines() if line.strip().startswith('pip install')
                 for word in line.split('#')[0].split()[2:]}
    assert set(PIP_ONLY) <= installed, f'missing from the robot install: {sorted(set(PIP_ONLY) - installed)}'


def test_setup_installs_runtime_only_with_launch_and_config():
    """setup.py ships the runtime, launch and config files and both console scripts, never training/."""
    code = ('from distutils.core import run_setup;'
            "d = run_setup('setup.py', stop_after='init');"
            'print(repr((d.packages, d.data_files, d.entry_points)))')
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, check=True)
    packages, data_files, entry_points = ast.literal_eval(result.stdout.strip().splitlines()[-1])
    assert 'depth_kd_ros' in packages and 'depth_kd_ros.testing' not in packages
    assert not [p for p in packages if p.startswith(('training', 'disdepth', 'test'))]
    installed = {dest: files for dest, files in data_files}
    assert 'launch/mono_depth.launch.py' in installed['share/depth_kd_ros/launch']
    assert 'config/mono_depth.yaml' in installed['share/depth_kd_ros/config']
    assert 'config/mono_depth.rviz' in installed['share/depth_kd_ros/config']
    scripts = ' '.join(entry_points['console_scripts'])
    assert 'mono_depth_node = depth_kd_ros.node.process:main' in scripts
    assert 'mono_depth_offline = depth_kd_ros.offline.cli:main' in scripts
