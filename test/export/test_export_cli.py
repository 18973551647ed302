"""training/export.py from a real checkpoint: ONNX + .pt2, the .pt2 in a fresh process without training code,
and one-line errors (no traceback) for corrupt, foreign or impossible inputs."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from export_helpers import HEIGHT, WIDTH, make_config, trained_like_student, write_checkpoint

from depth_kd_ros.backends import create_backend
from depth_kd_ros.model_file import read_model_info

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / 'training' / 'export.py'
# The development venv has the training library installed (make setup); the robot does not: the fresh process
# refuses every import of it, so a .pt2 that needed training code to load would fail here.
FRESH_PROCESS = '''
import json, sys
class NoTrainingCode:
    def find_spec(self, name, path=None, target=None):
        if name.partition('.')[0] == 'disdepth':
            raise ImportError(f'{name}: no training code on the robot')
sys.meta_path.insert(0, NoTrainingCode())
import numpy as np
from depth_kd_ros.backends import create_backend
backend = create_backend('torch', sys.argv[1])
out = backend.infer(np.load(sys.argv[2]))
np.savez(sys.argv[3], **out)
try:
    import disdepth  # noqa: F401
    importable = True
except ImportError:
    importable = False
print(json.dumps({'outputs': list(backend.output_names), 'disdepth_loaded': 'disdepth' in sys.modules,
                  'training_importable': importable, 'torch_loaded': 'torch' in sys.modules}))
'''


def _cli_main():
    spec = importlib.util.spec_from_file_location('export_cli', CLI)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """One CLI run as a user types it: bins student with LGConv -> model.onnx + model.pt2."""
    folder = tmp_path_factory.mktemp('export')
    cfg = make_config('mobilenet_v2', 'bins', True)
    torch.manual_seed(0)
    ckpt = write_checkpoint(folder / 'checkpoints', cfg, trained_like_student(cfg))
    result = subprocess.run([sys.executable, str(CLI), '--checkpoint', ckpt, '--output', str(folder / 'model.onnx'),
                             '--pt2', str(folder / 'model.pt2')], capture_output=True, text=True, cwd=folder,
                            timeout=300, check=False)
    return folder, ckpt, result


def test_cli_exports_onnx_and_pt2_with_parity_report(exported):
    """The CLI succeeds, prints max/mean ORT-vs-torch differences, and both files carry the same metadata."""
    folder, _, result = exported
    assert result.returncode == 0, result.stderr
    print(result.stdout)
    assert 'max abs diff' in result.stdout and 'mean abs diff' in result.stdout
    assert 'synthetic_outdoor test images' in result.stdout, 'parity must run on real test images'
    onnx_info, pt2_info = read_model_info(str(folder / 'model.onnx')), read_model_info(str(folder / 'model.pt2'))
    assert onnx_info == pt2_info and onnx_info.outputs == ('depth', 'depth_std')
    assert (onnx_info.input_height, onnx_info.input_width) == (HEIGHT, WIDTH)


def test_pt2_runs_in_fresh_process_without_training_code(exported, tmp_path):
    """The robot's torch backend loads the .pt2 without the training code and matches the checkpoint."""
    from disdepth.build import load_model

    folder, ckpt, result = exported
    assert result.returncode == 0, result.stderr
    image = torch.rand(1, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(3))
    np.save(tmp_path / 'image.npy', image.numpy())
    proc = subprocess.run([sys.executable, '-I', '-c', FRESH_PROCESS, str(folder / 'model.pt2'),
                           str(tmp_path / 'image.npy'), str(tmp_path / 'out.npz')],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout.strip().splitlines()[-1])
    assert status == {'outputs': ['depth', 'depth_std'], 'disdepth_loaded': False, 'training_importable': False,
                      'torch_loaded': True}
    model, _ = load_model(ckpt)
    with torch.no_grad():
        ref = model(image)
    got = np.load(tmp_path / 'out.npz')
    for name in ('depth', 'depth_std'):
        np.testing.assert_allclose(got[name], ref[name].numpy(), atol=1e-4, rtol=0)
    ort_depth = create_backend('onnxruntime', str(folder / 'model.onnx')).infer(image.numpy())['depth']
    np.testing.assert_allclose(ort_depth, got['depth'], atol=1e-3, rtol=0)


def _broken_checkpoints(folder: Path) -> dict[str, tuple[str, str]]:
    """name -> (checkpoint path, expected message fragment)."""
    cfg = make_config('mobilenet_v2', 'plain', False)
    good = write_checkpoint(folder / 'good', cfg, trained_like_student(cfg))
    corrupt = write_checkpoint(folder / 'corrupt', cfg, trained_like_student(cfg))
    Path(corrupt).write_bytes(Path(corrupt).read_bytes()[:1000])
    other = write_checkpoint(folder / 'other', make_config('resnet18', 'plain', False),
                             trained_like_student(cfg))  # meta says resnet18, weights are a MobileNetV2
    teacher = write_checkpoint(folder / 'teacher', cfg, trained_like_student(cfg))
    meta_path = Path(teacher).with_suffix('.json')
    meta_path.write_text(json.dumps(dict(json.loads(meta_path.read_text()), task='teacher')))
    return {'corrupt': (corrupt, 'corrupt'), 'architecture': (other, 'do not match'),
            'teacher': (teacher, "expected 'student'"), 'missing': (str(folder / 'nope.pt'), 'not found'),
            'size': (good, 'multiples of 32')}


def test_cli_bad_inputs_give_one_line_errors(tmp_path, capsys):
    """Corrupt file, other architecture, teacher checkpoint, missing file, impossible size: exit 2, clear text."""
    main = _cli_main()
    for name, (ckpt, fragment) in _broken_checkpoints(tmp_path).items():
        extra = ['--height', '70'] if name == 'size' else []
        code = main(['--checkpoint', ckpt, '--output', str(tmp_path / f'{name}.onnx'), *extra])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith('error: ') and fragment in err, (name, err)
        assert not (tmp_path / f'{name}.onnx').exists()
