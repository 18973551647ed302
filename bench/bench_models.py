"""Student vs teacher-class cost: params, GFLOPs and ONNX Runtime CPU latency, one process, interleaved.

Paper: DisDepth, arXiv 2404.16386, section 4 (efficiency) and 3.2 (LGConv overhead); docs/design.md section 2.
Issue 2's targets: LGConv adds <= 15 % latency on ResNet-18; ResNet-18+LGConv >= 8x faster than a
Depth-Anything-V2-Small-sized Transformer (docs/design.md section 2 predicts the latter fails on a CPU). Also sweeps
``lgconv.stages`` on both families to choose the config default (<= 15 % over the plain MobileNetV2 student).

    latency = median over R rounds of one ORT ``run`` (2 intra-op threads); each round runs every model once,
              in turn, so machine load hits all models alike.
    overhead = median_r(t_r(+LGConv) / t_r(plain)) - 1;   speedup = median_r(t_r(Transformer) / t_r(student))
    (ratios paired within each round r, so load changes on a shared machine cancel)

Students are full models (backbone + decoder + head, bins head, config defaults, random init); the
Transformer is ``DepthAnythingForDepthEstimation`` with a DINOv2-S/14 backbone (random weights) at
196x644 and 476x644 (multiples of the patch 14) against 192x640 and 480x640.
Usage: ``python bench/bench_models.py [--quick] [--output bench/results/models.json]``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import onnxruntime as ort
import torch
from torch import nn
from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

from disdepth.config import LGConvConfig, ModelConfig
from disdepth.models.complexity import count_flops, count_parameters
from disdepth.models.student import build_student

ROOT = Path(__file__).resolve().parents[1]

SIZES = [(192, 640), (480, 640)]
TRANSFORMER_SIZES = {(192, 640): (196, 644), (480, 640): (476, 644)}
# lgconv.stages candidates, timed at the deployment size SIZES[0] only (keeps the run within ~5 minutes).
SWEEP = {'mobilenet_v2': [[1], [2], [4], [3, 4], [1, 2, 3, 4]], 'resnet18': [[2], [4], [3, 4], [1, 2, 3, 4]]}
HEADLINE = ('resnet18', 'resnet18_lgconv', 'mobilenet_v2', 'mobilenet_v2_lgconv', 'transformer_da_v2_small')
TARGET_OVERHEAD = 0.15
TARGET_SPEEDUP = 8.0
THREADS = 2


class DepthOnly(nn.Module):
    """image [1,3,H,W] 0..1 -> depth (students also return depth_std), the model-file outputs."""

    def __init__(self, model: nn.Module, transformer: bool = False):
        super().__init__()
        self.model = model
        self.transformer = transformer

    def forward(self, image: torch.Tensor):
        if self.transformer:
            return self.model(pixel_values=image).predicted_depth
        out = self.model(image)
        return tuple(out[k] for k in ('depth', 'depth_std') if k in out)


def depth_anything_v2_small() -> nn.Module:
    """Depth-Anything-V2-Small architecture (24.8 M params): DINOv2-S/14 + DPT neck, random weights."""
    backbone = Dinov2Config(image_size=518, patch_size=14, hidden_size=384, num_hidden_layers=12,
                            num_attention_heads=6, out_indices=[3, 6, 9, 12], reshape_hidden_states=False)
    cfg = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=384,
                              neck_hidden_sizes=[48, 96, 192, 384], fusion_hidden_size=64)
    return DepthAnythingForDepthEstimation(cfg)


def student(backbone: str, stages: list[int] | None) -> nn.Module:
    cfg = ModelConfig(backbone=backbone, lgconv=LGConvConfig(enabled=bool(stages), stages=list(stages or [])))
    return build_student(cfg)


def build_models(default_stages: list[int]) -> dict[str, tuple[nn.Module, bool]]:
    """name -> (model, is_transformer). Headline rows first, then the stage sweep."""
    models = {
        'resnet18': (student('resnet18', None), False),
        'resnet18_lgconv': (student('resnet18', default_stages), False),
        'mobilenet_v2': (student('mobilenet_v2', None), False),
        'mobilenet_v2_lgconv': (student('mobilenet_v2', default_stages), False),
        'transformer_da_v2_small': (depth_anything_v2_small(), True),
    }
    for family, candidates in SWEEP.items():
        for stages in candidates:
            if stages != default_stages:
                models[f'{family}_lgconv_s{"".join(map(str, stages))}'] = (student(family, stages), False)
    return models


def export(model: nn.Module, transformer: bool, size: tuple[int, int], path: Path) -> None:
    # TorchScript exporter at opset 17, as disdepth/export.py ships to robots (that one also adds metadata).
    wrapper = DepthOnly(model, transformer).eval()
    torch.onnx.export(wrapper, (torch.rand(1, 3, *size),), str(path), input_names=['image'], opset_version=17,
                      dynamo=False)


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])


def interleaved_latency(sessions: dict, feeds: dict, rounds: int, warmup: int = 2) -> dict[str, list[float]]:
    """ms per round and model; every round runs each model once, in turn."""
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for r in range(warmup + rounds):
        for name, sess in sessions.items():
            start = time.perf_counter()
            sess.run(None, feeds[name])
            if r >= warmup:
                times[name].append((time.perf_counter() - start) * 1e3)
    return times


def measure(models: dict, rounds: int, workdir: Path) -> dict:
    results: dict = {name: {'params_m': count_parameters(m) / 1e6} for name, (m, _) in models.items()}
    for size in SIZES:
        key = f'{size[0]}x{size[1]}'
        sessions, feeds = {}, {}
        for name, (model, transformer) in models.items():
            if size != SIZES[0] and name not in HEADLINE:
                continue
            in_size = TRANSFORMER_SIZES[size] if transformer else size
            path = workdir / f'{name}_{key}.onnx'
            export(model, transformer, in_size, path)
            sessions[name] = session(path)
            feeds[name] = {'image': torch.rand(1, 3, *in_size).numpy()}
            flops = count_flops(DepthOnly(model, transformer), *in_size)
            results[name][key] = {'input': list(in_size), 'gflops': flops / 1e9}
            print(f'  exported {name} at {in_size}', flush=True)
        for name, ms in interleaved_latency(sessions, feeds, rounds).items():
            results[name][key].update(latency_ms=statistics.median(ms), times_ms=ms)
    return results


def paired(results: dict, key: str, a: str, b: str) -> float:
    """Median over rounds of time(a) / time(b) within the same round: load drifts cancel in the pair."""
    return statistics.median(ta / tb for ta, tb in zip(results[a][key]['times_ms'], results[b][key]['times_ms'],
                                                       strict=True))


def ratios(results: dict, default_stages: list[int]) -> dict:
    out: dict = {'default_stages': default_stages, 'ratio_method': 'median of per-round paired ratios'}
    for key in (f'{h}x{w}' for h, w in SIZES):
        teacher = 'transformer_da_v2_small'
        out[key] = {
            'lgconv_overhead_resnet18': paired(results, key, 'resnet18_lgconv', 'resnet18') - 1,
            'lgconv_overhead_mobilenet_v2': paired(results, key, 'mobilenet_v2_lgconv', 'mobilenet_v2') - 1,
            'speedup_resnet18_lgconv_vs_transformer': paired(results, key, teacher, 'resnet18_lgconv'),
            'speedup_resnet18_plain_vs_transformer': paired(results, key, teacher, 'resnet18'),
            'speedup_mobilenet_v2_lgconv_vs_transformer': paired(results, key, teacher, 'mobilenet_v2_lgconv'),
            'speedup_mobilenet_v2_plain_vs_transformer': paired(results, key, teacher, 'mobilenet_v2'),
        }
        out[key]['targets'] = {
            'resnet18_lgconv_overhead_le_15pct': out[key]['lgconv_overhead_resnet18'] <= TARGET_OVERHEAD,
            'resnet18_lgconv_speedup_ge_8x': out[key]['speedup_resnet18_lgconv_vs_transformer'] >= TARGET_SPEEDUP,
            'mobilenet_v2_lgconv_overhead_le_15pct':
                out[key]['lgconv_overhead_mobilenet_v2'] <= TARGET_OVERHEAD,
            'mobilenet_v2_lgconv_speedup_ge_8x':
                out[key]['speedup_mobilenet_v2_lgconv_vs_transformer'] >= TARGET_SPEEDUP,
        }
    key = f'{SIZES[0][0]}x{SIZES[0][1]}'
    sweep = {family: {str(s): paired(results, key, sweep_name(family, s, default_stages), family) - 1
                      for s in candidates}
             for family, candidates in SWEEP.items()}
    out['stage_sweep_overhead_' + key] = sweep
    out['mobilenet_v2_stages_within_15pct'] = [s for s, v in sweep['mobilenet_v2'].items() if v <= TARGET_OVERHEAD]
    out['mobilenet_v2_cheapest_stages'] = min(sweep['mobilenet_v2'], key=sweep['mobilenet_v2'].get)
    return out


def sweep_name(family: str, stages: list[int], default_stages: list[int]) -> str:
    return f'{family}_lgconv' if stages == default_stages else f'{family}_lgconv_s{"".join(map(str, stages))}'


def print_table(results: dict, summary: dict) -> None:
    keys = [f'{h}x{w}' for h, w in SIZES]
    print(f'{"model":32s} {"params M":>9s}' + ''.join(f' {k + " GFLOPs":>16s} {k + " ms":>12s}' for k in keys))
    for name, r in results.items():
        print(f'{name:32s} {r["params_m"]:9.2f}' + ''.join(
            f' {r[k]["gflops"]:16.2f} {r[k]["latency_ms"]:12.1f}' if k in r else f' {"-":>16s} {"-":>12s}'
            for k in keys))
    for key in keys:
        s = summary[key]
        print(f'{key}: LGConv overhead R18 {s["lgconv_overhead_resnet18"]:+.1%}, MNv2 '
              f'{s["lgconv_overhead_mobilenet_v2"]:+.1%}; speedup vs Transformer: R18+LGConv '
              f'{s["speedup_resnet18_lgconv_vs_transformer"]:.1f}x, MNv2+LGConv '
              f'{s["speedup_mobilenet_v2_lgconv_vs_transformer"]:.1f}x')
    for family, sweep in summary[f'stage_sweep_overhead_{keys[0]}'].items():
        print(f'{keys[0]} {family} lgconv.stages sweep: ' + ', '.join(f'{k} {v:+.1%}' for k, v in sweep.items()))
    print('MobileNetV2 stage sets within 15 %:', summary['mobilenet_v2_stages_within_15pct'],
          '; cheapest:', summary['mobilenet_v2_cheapest_stages'])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='5 timed rounds instead of 15')
    parser.add_argument('--output', default=str(ROOT / 'bench' / 'results' / 'models.json'))
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(THREADS)
    rounds = 5 if args.quick else 15
    default_stages = LGConvConfig().stages
    start = time.time()
    models = build_models(default_stages)
    with torch.no_grad(), tempfile.TemporaryDirectory() as tmp:
        results = measure(models, rounds, Path(tmp))
    summary = ratios(results, default_stages)
    report = {
        'script': 'bench/bench_models.py', 'quick': args.quick, 'rounds': rounds, 'ort_threads': THREADS,
        'onnxruntime': ort.__version__, 'torch': torch.__version__, 'cpu': platform.processor() or platform.machine(),
        'cpu_count': os.cpu_count(), 'load_avg_1m': os.getloadavg()[0], 'seconds': time.time() - start,
        'models': results, 'summary': summary,
    }
    print_table(results, summary)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + '\n')
    print(f'wrote {args.output} in {report["seconds"]:.0f} s')
    return report


if __name__ == '__main__':
    main()
