"""The pins: requirements.txt (main venv) and the robot stacks' requirements-humble.txt and requirements-jazzy.txt
beside it. A stack pins its own versions first; below its line '# The rest as in requirements.txt' every pin must
equal requirements.txt's, so a version bumped there cannot silently stay behind in a stack."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED_MARKER = '# The rest as in requirements.txt'
PIN = re.compile(r'^([A-Za-z0-9_.\-]+(?:\[[a-z,]+\])?)==(\S+)')


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split('#', 1)[0].strip()
        if line:
            match = PIN.match(line)
            assert match, f'not an exact pin: {line!r}'
            pins[match.group(1).lower()] = match.group(2)
    return pins


@pytest.mark.parametrize('stack', ['humble', 'jazzy'])
def test_stack_pins_are_exact_and_share_the_main_versions(stack):
    lines = (ROOT / f'requirements-{stack}.txt').read_text().splitlines()
    marker = next(i for i, line in enumerate(lines) if line.startswith(SHARED_MARKER))
    own, shared = _pins(lines[:marker]), _pins(lines[marker + 1:])
    main = _pins((ROOT / 'requirements.txt').read_text().splitlines())
    assert not set(own) & set(shared)
    assert {name: main.get(name) for name in shared} == shared
    for needed in ('numpy', 'opencv-python-headless', 'onnxruntime', 'onnx', 'pyyaml', 'tqdm', 'rosbags',
                   'ros-jazzy-rclpy[fastrtps]', 'pytest'):
        assert needed in own or needed in shared, f'requirements-{stack}.txt does not pin {needed}'
