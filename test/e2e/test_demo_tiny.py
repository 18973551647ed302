"""End to end, as `make demo` does it but tiny: teacher, distillation, export, the real node over DDS.

One slow test on purpose: it is the only check that the CLIs, the model-file contract and the
node agree with each other on a fresh checkout.
"""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from disdepth.metrics import METRIC_KEYS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_tiny_demo_runs_the_whole_chain(tmp_path):
    """The tiny demo profile finishes and its outputs are sane: finite depth, topics, a non-empty cloud."""
    out = tmp_path / 'demo_out'
    result = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'demo.py'), '--profile', 'tiny', '--out', str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    summary = json.loads((out / 'summary.json').read_text())
    assert set(summary['models']) == {'teacher', 'student_no_kd', 'student_distilled'}
    for name, metrics in summary['models'].items():
        assert set(METRIC_KEYS) <= set(metrics), name
        assert all(math.isfinite(metrics[k]) for k in METRIC_KEYS), (name, metrics)
        assert metrics['num_images'] == 2
    node = summary['node']
    assert node['frames_answered'] == node['frames_sent'] == 4  # slow camera: the node answers every frame
    assert {'depth', 'points'} <= set(node['topics'])
    assert math.isfinite(node['abs_rel_vs_gt']) and node['abs_rel_vs_gt'] > 0
    assert node['latency_ms_p50'] > 0 and node['rate_hz'] > 0
    assert node['points_in_ply'] > 0

    ply = (out / 'points.ply').read_bytes().split(b'end_header\n')[0].decode('ascii').splitlines()
    assert ply[0] == 'ply' and f'element vertex {node["points_in_ply"]}' in ply
    assert len(list((out / 'previews').glob('*.png'))) == 4  # one per replayed frame
    assert (out / 'student_distilled.onnx').stat().st_size > 0
