"""Typed training configuration: nested dataclasses, YAML files, dotted command-line overrides.

One mechanism for every script (distill.py, evaluate.py, export.py, benchmarks):

    cfg = load_config('config/training/synthetic_demo.yaml', ['trainer.max_steps=50', 'model.head=plain'])

YAML is read with ``yaml.safe_load``. Unknown keys and values of the wrong type raise ``ConfigError``
naming the key, like nanoGPT's configurator checks but without its ``exec``. The resolved config is
written to ``output_dir/config.yaml`` by the trainer (``save_config``).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from disdepth.data import DATASETS
from disdepth.distill.lam import ATTENTIONS
from disdepth.models.heads import HEADS
from disdepth.models.lgconv import DEPTHWISE_PROJ


class ConfigError(ValueError):
    """A config file or override names an unknown key or gives a value of the wrong type."""


@dataclass
class LGConvConfig:
    """Local-global convolution (docs/design.md section 2, arXiv 2404.16386 section 3.2)."""

    enabled: bool = True
    heads: int = 8  # N attention heads of the global branch
    reduction: int = 4  # r: hidden channels = in_channels / r
    # Backbone stages (1..4, strides 4, 8, 16, 32) whose 3x3 convs get the global branch. [4]: the cheapest
    # set on the MobileNetV2 student (bench/results/models.json: ~+22-28 % there, no set met 15 %; R18 ~+3 %).
    stages: list[int] = field(default_factory=lambda: [4])
    per_stage: int = 0  # LGConv on the last N eligible convs of each stage (the deepest); 0 = all of them
    bn_init_std: float = 1e-4  # BN scale ~ N(0, std): zero impact at initialisation
    # W_o beside a depthwise 3x3 conv (MobileNet), where a dense C x C 1x1 costs far more than the conv itself
    # (docs/design.md section 2): 'grouped' by heads, 'channelwise' (one weight per channel, as the depthwise
    # conv mixes no channels either; the branch's channel mixing is then W_v's, per image) or 'dense'.
    # Beside dense 3x3 convs (ResNet) W_o is always dense.
    depthwise_proj: str = 'grouped'


@dataclass
class ModelConfig:
    """Student CNN: backbone (strides 4..32) + LGConv + decoder + depth head."""

    backbone: str = 'mobilenet_v2'  # key of disdepth.models.backbones.BACKBONES
    pretrained: Optional[str] = None  # local folder or hub id of ImageNet weights; None = random init
    lgconv: LGConvConfig = field(default_factory=LGConvConfig)
    # Output channels per decoder step; 4 steps end at stride 2, 3 steps at stride 4 (head and its bins there).
    decoder_channels: list[int] = field(default_factory=lambda: [128, 64, 32, 16])
    # Decoder steps (0 = the coarsest) whose 3x3 conv is depthwise separable (depthwise 3x3 + 1x1); the others
    # are dense 3x3 convs, as all of them are in the paper-scale student.
    decoder_separable_steps: list[int] = field(default_factory=list)
    head: str = 'bins'  # 'bins' (AdaBins-style adaptive bins) or 'plain' (sigmoid x max_depth)
    num_bins: int = 64
    min_depth: float = 1e-3  # metres
    max_depth: float = 80.0  # metres


@dataclass
class TeacherConfig:
    """Transformer teacher: a Hugging Face depth model, or the small one trained from scratch."""

    kind: str = 'small'  # 'small' (random init, built from the fields below) or 'hf' (from_pretrained)
    path: Optional[str] = None  # hf: local folder or hub id; small: a checkpoint from task=teacher
    finetune_lr_scale: float = 0.0  # 0 = encoder frozen; else its lr = optim.lr * scale
    random_init: bool = False  # hf: build from path/config.json only, no weights (tests, smoke runs)
    # small teacher (a ViT + DPT-style neck, Depth-Anything-like, tiny)
    patch_size: int = 8
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    neck_channels: int = 64


@dataclass
class DistillConfig:
    """DisDepth distillation switches, one key per contribution (for the ablation table)."""

    enabled: bool = True  # False: student-only supervised baseline
    ghost_decoder: bool = True  # False: plain feature KD (FAM trained by KD only, no teacher SILog)
    attention: str = 'lam'  # key of disdepth.distill.lam.ATTENTIONS: 'lam' (loss attention module), 'uniform' (A = 1)
    kd_weight: float = 1.0  # lambda of L_kd
    teacher_silog_weight: float = 1.0
    warmup_epochs: float = 1.0  # student-only epochs before the KD terms switch on
    lam_dim: int = 32  # d of the LAM query/key projections


@dataclass
class DataConfig:
    """Dataset and protocol (docs/design.md section 2, 'Protocols')."""

    dataset: str = 'synthetic_outdoor'  # one of disdepth.data.DATASETS
    data_root: Optional[str] = None
    gt_root: Optional[str] = None
    train_split: Optional[str] = None
    test_split: Optional[str] = None
    nyu_mat: Optional[str] = None  # official labelled .mat for NYU evaluation (654 test images)
    # 1-based indices into nyu_mat (official splits.mat testNdxs, 654 integers); required with nyu_mat
    nyu_test_indices: Optional[str] = None
    height: int = 96  # training crop, pixels
    width: int = 320
    eval_height: int = 96  # evaluation/export input size, pixels
    eval_width: int = 320
    min_depth: float = 1e-3  # metres
    max_depth: float = 80.0
    num_train: int = 2000  # synthetic: images per epoch
    num_test: int = 64  # synthetic: held-out images
    seed: int = 0
    augment: bool = True
    batch_size: int = 8
    num_workers: int = 0
    # recordings (disdepth/data/recording_cache.py): rosbag2 folders/.db3/.mcap files and image folders
    recordings: list[str] = field(default_factory=list)
    image_topic: Optional[str] = None  # null: the bag's only image topic (besides depth_topic)
    camera_info_topic: Optional[str] = None  # null: camera_info beside the image topic, else the only one
    depth_topic: Optional[str] = None  # registered depth (16UC1 mm, 32FC1 m, compressedDepth); null: teacher
    depth_tolerance_s: float = 0.02  # |stamp(depth) - stamp(image)| allowed when pairing, seconds
    every_nth: int = 1  # keep every n-th image of a recording ...
    min_gap_s: float = 0.0  # ... and at least this long after the last kept one of its segment (bags only)
    test_fraction: float = 0.1  # held out: the last part of each recording (by time)
    depth_png_scale: float = 1000.0  # image folders: metres = depth PNG value / scale (1000: mm)
    cache_dir: Optional[str] = None  # decoded frames; null: ~/.cache/depth_kd_ros/recordings
    # px at eval_width x eval_height of the training camera; null: the dataset's own (recordings: camera_info P;
    # an uncalibrated camera needs it)
    focal_length: Optional[float] = None


@dataclass
class OptimConfig:
    """AdamW + one-cycle schedule (docs/design.md section 2 defaults)."""

    lr: float = 1e-4
    weight_decay: float = 1e-2
    backbone_lr_scale: float = 1.0  # pretrained backbone lr = lr * scale
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 100.0
    grad_clip: float = 1.0


@dataclass
class TrainerConfig:
    max_steps: int = 1000
    steps_per_epoch: int = 0  # 0 = len(train loader); sets the epoch used by warm-up
    log_every: int = 10
    val_every: int = 200
    ckpt_every: int = 200
    preview_every: int = 200
    amp: bool = True  # mixed precision, used only on CUDA
    amp_dtype: str = 'bf16'  # CUDA autocast dtype: bf16 | fp16 (fp16 adds a GradScaler)
    device: str = 'auto'  # auto | cpu | cuda
    seed: int = 0
    progress: bool = True


@dataclass
class Config:
    """Top-level training config. ``task`` chooses what is trained and saved."""

    output_dir: str = 'runs/default'
    task: str = 'student'  # 'student' (with or without distillation) or 'teacher' (supervised)
    model: ModelConfig = field(default_factory=ModelConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


_CHOICES = {
    'task': ('student', 'teacher'),
    'model.head': tuple(HEADS),
    'model.lgconv.depthwise_proj': DEPTHWISE_PROJ,
    'teacher.kind': ('small', 'hf'),
    'distill.attention': tuple(ATTENTIONS),
    'data.dataset': DATASETS,
    'trainer.device': ('auto', 'cpu', 'cuda'),
    'trainer.amp_dtype': ('bf16', 'fp16'),
}

# Keys replaced by a more general one: old key -> (new name in the same section, {old value: new value}).
_RENAMED = {'model.lgconv.grouped_depthwise_proj': ('depthwise_proj', {True: 'grouped', False: 'dense'})}


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check ``value`` against a dataclass field annotation; only numbers convert to float."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f'{key}: expected a list, got {value!r}')
        return [_coerce(v, args[0], f'{key}[{i}]') for i, v in enumerate(value)]
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is float and isinstance(value, str):
        # YAML 1.1 reads `1e-4` (no dot) as a string; accept it as the number it plainly is.
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f'{key}: expected float, got str {value!r}') from None
    if annotation in (bool, int, float, str) and type(value) is not annotation:
        raise ConfigError(f'{key}: expected {annotation.__name__}, got {type(value).__name__} {value!r}')
    return value


def _merge(obj: Any, values: dict, prefix: str = '') -> None:
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    for name, value in values.items():
        key = prefix + name
        if key in _RENAMED and isinstance(value, bool):  # a config or checkpoint written before the rename
            name, value = _RENAMED[key][0], _RENAMED[key][1][value]
            key = prefix + name
        if name not in names:
            raise ConfigError(f'unknown config key {key!r}; valid keys here: {sorted(names)}')
        current = getattr(obj, name)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f'{key}: expected a mapping of {sorted(f.name for f in dataclasses.fields(current))}')
            _merge(current, value, key + '.')
            continue
        value = _coerce(value, hints[name], key)
        if key in _CHOICES and value not in _CHOICES[key]:
            raise ConfigError(f'{key}: {value!r} is not one of {_CHOICES[key]}')
        setattr(obj, name, value)


def parse_override(text: str) -> dict:
    """``'a.b=3'`` -> ``{'a': {'b': 3}}``; the value is parsed as YAML (so 1e-3, true, [1,2], null work)."""
    if '=' not in text:
        raise ConfigError(f'override {text!r} is not of the form section.key=value')
    dotted, raw = text.split('=', 1)
    value = yaml.safe_load(raw) if raw.strip() else ''
    nested: dict = value
    for part in reversed(dotted.strip().split('.')):
        nested = {part: nested}
    return nested


def config_from_dict(values: dict, overrides: Optional[list[str]] = None) -> Config:
    """Build a ``Config`` from a nested mapping plus dotted overrides. Raises ``ConfigError``."""
    cfg = Config()
    _merge(cfg, values or {})
    for text in overrides or []:
        _merge(cfg, parse_override(text))
    return cfg


def load_config(path: str | Path | None, overrides: Optional[list[str]] = None) -> Config:
    """Load a YAML config (``yaml.safe_load``) and apply ``section.key=value`` overrides.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ConfigError: unknown key, wrong type or invalid choice (the message names the key).
    """
    values: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f'config file not found: {path}')
        values = yaml.safe_load(path.read_text()) or {}
        if not isinstance(values, dict):
            raise ConfigError(f'{path}: top level must be a mapping')
    return config_from_dict(values, overrides)


def config_to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as YAML (``output_dir/config.yaml``)."""
    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
