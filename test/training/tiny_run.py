"""The tiny training run shared by the training tests (32x64 images, tiny teacher and student)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

DISTILL_SCRIPT = Path(__file__).resolve().parents[2] / 'training' / 'distill.py'

# A tiny but complete run: a few steps of 32x64 synthetic images, small teacher, MobileNetV2 student.
TINY = {
    # LGConv off: its own tests are the model's; here it would only make checkpoints 6x larger
    'model': {'backbone': 'mobilenet_v2', 'lgconv': {'enabled': False}, 'decoder_channels': [16, 16, 8, 8],
              'head': 'bins', 'num_bins': 8},
    'teacher': {'kind': 'small', 'patch_size': 8, 'hidden_size': 32, 'num_layers': 4, 'num_heads': 2,
                'neck_channels': 16},
    'distill': {'warmup_epochs': 0.0},
    'data': {'dataset': 'synthetic_outdoor', 'height': 32, 'width': 64, 'eval_height': 32, 'eval_width': 64,
             'num_train': 16, 'num_test': 2, 'batch_size': 2, 'augment': False},
    'optim': {'lr': 1e-3},
    'trainer': {'max_steps': 4, 'log_every': 1, 'val_every': 100, 'ckpt_every': 2, 'preview_every': 100,
                'device': 'cpu', 'progress': False},
}


def tiny_overrides(output_dir: Path, **extra) -> list[str]:
    """TINY as dotted overrides (for subprocess runs), plus ``extra`` ('a.b' written as a__b)."""
    items = []
    for section, values in TINY.items():
        for key, value in values.items():
            items.append(f'{section}.{key}={value}'.replace("'", ''))
    items.append(f'output_dir={output_dir}')
    items += [f"{k.replace('__', '.')}={v}" for k, v in extra.items()]
    return items


def load_distill_module():
    """training/distill.py as a module (a script, not part of the disdepth package), to call its main() in-process."""
    spec = importlib.util.spec_from_file_location('distill_script', DISTILL_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
