"""Student vs teacher-class cost: params, GFLOPs and ONNX Runtime CPU latency, one process, interleaved; and where
the deployed student's time goes (ONNX Runtime's profiler, per component).

Paper: DisDepth, arXiv 2404.16386, section 4 (efficiency) and 3.2 (LGConv overhead); docs/design.md section 2.
Goals: the deployed student (config/training/synthetic_demo.yaml's model: MobileNetV2 + LGConv,
bins head) >= 10x faster than a Depth-Anything-V2-Small-sized Transformer at 192x640 and 480x640, with LGConv
adding <= 15 % to the same student without it; and LGConv adds <= 15 % on the paper's ResNet-18 student
(config/training/disdepth_r18_kitti_24e.yaml's model), which is >= 8x faster than that Transformer (docs/design.md
section 2 predicts the latter fails on a CPU).

    latency = median over R rounds of one ORT ``run`` (2 intra-op threads, no spinning workers, as the node's
              backend); each round runs every model once, in turn, so machine load hits all models alike.
    overhead = median_r(t_r(+LGConv) / t_r(plain)) - 1;   speedup = median_r(t_r(Transformer) / t_r(student))
    (ratios paired within each round r, so load changes on a shared machine cancel)

Rows: the deployed student with and without LGConv and its backbone alone (the floor a decoder and head add to);
the paper's ResNet-18 student with and without LGConv; the Transformer (``DepthAnythingForDepthEstimation``,
DINOv2-S/14, random weights, at 196x644 and 476x644, multiples of the patch 14, against 192x640 and 480x640).
At 192x640 also ``VARIANTS``: the deployed student with architecture keys set back to the values of the student
deployed before the CPU speed work (config/variants/former_student.yaml), one group at a time and all together
(``former``), and the deployed student against the Transformer with ORT's default spinning workers, as this
benchmark ran before (``spinning_check``). All students: random init.
Usage: ``python bench/bench_models.py [--quick] [--output bench/results/models.json]``.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import onnxruntime as ort
import torch
import yaml
from torch import nn
from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

from disdepth.config import load_config
from disdepth.models.complexity import count_flops, count_parameters
from disdepth.models.lgconv import LGConv
from disdepth.models.student import build_student

ROOT = Path(__file__).resolve().parents[1]

SIZES = [(192, 640), (480, 640)]
TRANSFORMER_SIZES = {(192, 640): (196, 644), (480, 640): (476, 644)}
DEPLOYED_CONFIG = ROOT / 'config' / 'training' / 'synthetic_demo.yaml'
PAPER_CONFIG = ROOT / 'config' / 'training' / 'disdepth_r18_kitti_24e.yaml'
TRANSFORMER = 'transformer_da_v2_small'
DEPLOYED = 'mobilenet_v2_lgconv'
NO_LGCONV = ['model.lgconv.enabled=false']
# The deployed student with keys back at the values of the one deployed before (timed at SIZES[0] only).
FORMER = yaml.safe_load((ROOT / 'config' / 'variants' / 'former_student.yaml').read_text())
VARIANTS = {f'{DEPLOYED}_former_{group}': overrides for group, overrides in FORMER.items()}
VARIANTS[f'{DEPLOYED}_former'] = [o for overrides in FORMER.values() for o in overrides]
VARIANTS['mobilenet_v2_former'] = VARIANTS[f'{DEPLOYED}_former'] + NO_LGCONV
TARGET_SPEEDUP = 10.0  # the deployed student against the Transformer
TARGET_OVERHEAD = 0.15
TARGET_SPEEDUP_RESNET18 = 8.0  # the paper's ResNet-18 student against the Transformer
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


class BackboneOnly(nn.Module):
    """image [1,3,H,W] 0..1 -> the student's 4 backbone maps (ImageNet normalisation included)."""

    def __init__(self, student: nn.Module):
        super().__init__()
        self.student = student

    def forward(self, image: torch.Tensor):
        return tuple(self.student.encode(image))


def depth_anything_v2_small_config(**changes) -> DepthAnythingConfig:
    """Depth-Anything-V2-Small's architecture (24.8 M params): DINOv2-S/14 + DPT neck; ``changes`` e.g.
    depth_estimation_type='metric', max_depth=20 for the Metric-Indoor-Small model."""
    backbone = Dinov2Config(image_size=518, patch_size=14, hidden_size=384, num_hidden_layers=12,
                            num_attention_heads=6, out_indices=[3, 6, 9, 12], reshape_hidden_states=False)
    return DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=384,
                               neck_hidden_sizes=[48, 96, 192, 384], fusion_hidden_size=64, **changes)


def depth_anything_v2_small() -> nn.Module:
    """Depth-Anything-V2-Small, random weights."""
    return DepthAnythingForDepthEstimation(depth_anything_v2_small_config())


def student(config: Path, overrides: list[str] = ()) -> nn.Module:
    """The model section of a shipped training config (random init, no weights read)."""
    return build_student(load_config(config, ['model.pretrained=null', *overrides]).model)


def build_models() -> dict[str, nn.Module]:
    """name -> module for ``DepthOnly`` (or already wrapped). Headline rows first, then ``VARIANTS``."""
    deployed = student(DEPLOYED_CONFIG)
    models = {
        'resnet18': student(PAPER_CONFIG, NO_LGCONV),
        'resnet18_lgconv': student(PAPER_CONFIG),
        'mobilenet_v2_backbone': BackboneOnly(student(DEPLOYED_CONFIG, NO_LGCONV)),
        'mobilenet_v2': student(DEPLOYED_CONFIG, NO_LGCONV),
        DEPLOYED: deployed,
        TRANSFORMER: depth_anything_v2_small(),
    }
    models.update({name: student(DEPLOYED_CONFIG, overrides) for name, overrides in VARIANTS.items()})
    return models


def wrap(name: str, model: nn.Module) -> nn.Module:
    return model if isinstance(model, BackboneOnly) else DepthOnly(model, name == TRANSFORMER)


def export(model: nn.Module, size: tuple[int, int], path: Path) -> None:
    # TorchScript exporter at opset 17, as disdepth/export.py ships to robots (that one also adds metadata).
    torch.onnx.export(model.eval(), (torch.rand(1, 3, *size),), str(path), input_names=['image'], opset_version=17,
                      dynamo=False)


def session_options() -> ort.SessionOptions:
    """The node's ONNX Runtime settings (depth_kd_ros/backends/onnxruntime_backend.py) with ``THREADS`` threads.

    Without spinning as there: with it, every session's idle worker spins on after its run and takes a core from
    the model timed next, which halved the students' measured speed-ups in this interleaved loop (a student
    measured 49 ms right after another session, 23 ms after a 50 ms pause or without spinning, at 192x640).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    return options


def session(path: Path, spinning: bool = False) -> ort.InferenceSession:
    options = session_options()
    if spinning:
        options.add_session_config_entry('session.intra_op.allow_spinning', '1')  # ORT's default
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


def lgconv_paths(model: nn.Module) -> list[str]:
    """Module paths of the LGConv wrappers, dotted and framed by dots (``.backbone.layers.15.conv_3x3.``)."""
    return [f'.{name}.' for name, m in model.named_modules() if isinstance(m, LGConv)]


def component(node: str, branches: list[str]) -> str:
    """Which part of a student an ONNX Runtime node (after graph optimisation) belongs to, from its name: the
    TorchScript exporter names nodes by module path (``/model/backbone/layers.15/conv_3x3/Relu``)."""
    dotted = node.replace('/', '.')
    for path in branches:
        if path in dotted:
            # the wrapped conv (`local`) and its moved activation, into which ORT fuses the branch's sum, are backbone
            rest = dotted.split(path, 1)[1]
            return 'backbone' if rest.startswith(('local.', 'activation.')) else 'lgconv_branch'
    for part in ('backbone', 'decoder', 'head'):
        if f'.{part}.' in dotted:
            return part
    if node.startswith(('Reorder', 'ReorderInput', 'ReorderOutput')):
        return 'layout_reorder'  # NCHWc <-> NCHW conversions ORT inserts around non-convolution ops
    return 'other'  # input normalisation, the final upsampling to the input size


def profile_components(path: Path, model: nn.Module, size: tuple[int, int], runs: int = 10) -> dict:
    """ORT's profiler over ``runs`` runs: ms per run and node count per component, and the slowest op types."""
    options = session_options()
    with tempfile.TemporaryDirectory() as tmp:
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / 'profile')
        sess = ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])
        feed = {'image': torch.rand(1, 3, *size).numpy()}
        for _ in range(runs + 1):
            sess.run(None, feed)
        events = json.loads(Path(sess.end_profiling()).read_text())
    first_run = min((e for e in events if e.get('name') == 'model_run'), key=lambda e: e['ts'])
    warm = first_run['ts'] + first_run['dur']  # the first run (allocations, first touch) is left out
    branches = lgconv_paths(model)
    per_part: dict = collections.defaultdict(float)
    nodes: dict = collections.defaultdict(set)
    op_types: dict = collections.defaultdict(float)
    for event in events:
        if event.get('cat') != 'Node' or not event['name'].endswith('_kernel_time') or event['ts'] < warm:
            continue
        node = event['name'][:-len('_kernel_time')]
        part = component(node, branches)
        per_part[part] += event['dur'] / 1e3 / runs
        nodes[part].add(node)
        op_types[f'{part}:{event["args"]["op_name"]}'] += event['dur'] / 1e3 / runs
    total = sum(per_part.values())
    return {
        'kernel_ms_per_run': total,
        'nodes': sum(len(v) for v in nodes.values()),
        'components': {part: {'ms': ms, 'share': ms / total, 'nodes': len(nodes[part])}
                       for part, ms in sorted(per_part.items(), key=lambda kv: -kv[1])},
        'top_ops': dict(sorted(op_types.items(), key=lambda kv: -kv[1])[:12]),
    }


def measure(models: dict, rounds: int, workdir: Path) -> tuple[dict, dict]:
    """Latency of every model (interleaved per size) and the component profiles of the deployed and former students."""
    results: dict = {name: {'params_m': count_parameters(m) / 1e6} for name, m in models.items()}
    profiles: dict = {}
    for size in SIZES:
        key = f'{size[0]}x{size[1]}'
        sessions, feeds = {}, {}
        for name, model in models.items():
            if size != SIZES[0] and name in VARIANTS:
                continue
            in_size = TRANSFORMER_SIZES[size] if name == TRANSFORMER else size
            path = workdir / f'{name}_{key}.onnx'
            export(wrap(name, model), in_size, path)
            sessions[name] = session(path)
            feeds[name] = {'image': torch.rand(1, 3, *in_size).numpy()}
            results[name][key] = {'input': list(in_size), 'gflops': count_flops(wrap(name, model), *in_size) / 1e9}
            print(f'  exported {name} at {in_size}', flush=True)
        for name, ms in interleaved_latency(sessions, feeds, rounds).items():
            results[name][key].update(latency_ms=statistics.median(ms), times_ms=ms)
        results[TRANSFORMER][key]['load_avg_1m_after'] = os.getloadavg()[0]
        profiles[key] = {name: profile_components(workdir / f'{name}_{key}.onnx', models[name], size)
                         for name in (DEPLOYED, f'{DEPLOYED}_former') if name in sessions}
    return results, profiles


def spinning_check(workdir: Path, rounds: int) -> dict:
    """The deployed student and the Transformer at SIZES[0], interleaved as in ``measure`` but with ORT's default
    spinning workers (the settings of this benchmark before the CPU speed work), in a loop of their own."""
    key = f'{SIZES[0][0]}x{SIZES[0][1]}'
    sizes = {DEPLOYED: SIZES[0], TRANSFORMER: TRANSFORMER_SIZES[SIZES[0]]}
    sessions = {name: session(workdir / f'{name}_{key}.onnx', spinning=True) for name in sizes}
    feeds = {name: {'image': torch.rand(1, 3, *size).numpy()} for name, size in sizes.items()}
    times = interleaved_latency(sessions, feeds, rounds)
    return {'size': key, 'latency_ms': {name: statistics.median(ms) for name, ms in times.items()},
            'speedup_deployed_vs_transformer': statistics.median(
                t / s for t, s in zip(times[TRANSFORMER], times[DEPLOYED], strict=True))}


def paired(results: dict, key: str, a: str, b: str) -> float:
    """Median over rounds of time(a) / time(b) within the same round: load drifts cancel in the pair."""
    return statistics.median(ta / tb for ta, tb in zip(results[a][key]['times_ms'], results[b][key]['times_ms'],
                                                       strict=True))


def ratios(results: dict) -> dict:
    out: dict = {'ratio_method': 'median of per-round paired ratios', 'deployed': DEPLOYED,
                 'deployed_config': str(DEPLOYED_CONFIG.relative_to(ROOT)),
                 'deployed_model': dataclasses.asdict(load_config(DEPLOYED_CONFIG).model),
                 'paper_config': str(PAPER_CONFIG.relative_to(ROOT))}
    for key in (f'{h}x{w}' for h, w in SIZES):
        s = {
            'speedup_deployed_vs_transformer': paired(results, key, TRANSFORMER, DEPLOYED),
            'lgconv_overhead_mobilenet_v2': paired(results, key, DEPLOYED, 'mobilenet_v2') - 1,
            'speedup_mobilenet_v2_plain_vs_transformer': paired(results, key, TRANSFORMER, 'mobilenet_v2'),
            'speedup_mobilenet_v2_backbone_vs_transformer': paired(results, key, TRANSFORMER, 'mobilenet_v2_backbone'),
            'lgconv_overhead_resnet18': paired(results, key, 'resnet18_lgconv', 'resnet18') - 1,
            'speedup_resnet18_lgconv_vs_transformer': paired(results, key, TRANSFORMER, 'resnet18_lgconv'),
        }
        s['targets'] = {
            'deployed_speedup_ge_10x': s['speedup_deployed_vs_transformer'] >= TARGET_SPEEDUP,
            'mobilenet_v2_lgconv_overhead_le_15pct': s['lgconv_overhead_mobilenet_v2'] <= TARGET_OVERHEAD,
            'resnet18_lgconv_overhead_le_15pct': s['lgconv_overhead_resnet18'] <= TARGET_OVERHEAD,
            'resnet18_lgconv_speedup_ge_8x': s['speedup_resnet18_lgconv_vs_transformer'] >= TARGET_SPEEDUP_RESNET18,
        }
        out[key] = s
    key = f'{SIZES[0][0]}x{SIZES[0][1]}'
    out['variants_' + key] = {
        name: {'overrides': overrides, 'speedup_vs_transformer': paired(results, key, TRANSFORMER, name),
               'latency_vs_deployed': paired(results, key, name, DEPLOYED)}
        for name, overrides in VARIANTS.items()}
    out['variants_' + key]['mobilenet_v2_former']['lgconv_overhead'] = paired(
        results, key, f'{DEPLOYED}_former', 'mobilenet_v2_former') - 1
    return out


def print_table(results: dict, summary: dict, profiles: dict) -> None:
    keys = [f'{h}x{w}' for h, w in SIZES]
    print(f'{"model":40s} {"params M":>9s}' + ''.join(f' {k + " GFLOPs":>16s} {k + " ms":>12s}' for k in keys))
    for name, r in results.items():
        print(f'{name:40s} {r["params_m"]:9.2f}' + ''.join(
            f' {r[k]["gflops"]:16.2f} {r[k]["latency_ms"]:12.1f}' if k in r else f' {"-":>16s} {"-":>12s}'
            for k in keys))
    for key in keys:
        s = summary[key]
        print(f'{key}: deployed {s["speedup_deployed_vs_transformer"]:.1f}x the Transformer (backbone alone '
              f'{s["speedup_mobilenet_v2_backbone_vs_transformer"]:.1f}x), its LGConv '
              f'{s["lgconv_overhead_mobilenet_v2"]:+.1%}; ResNet-18+LGConv '
              f'{s["speedup_resnet18_lgconv_vs_transformer"]:.1f}x, its LGConv {s["lgconv_overhead_resnet18"]:+.1%}')
        for name, p in profiles[key].items():
            print(f'  {name} profile ({p["kernel_ms_per_run"]:.1f} ms, {p["nodes"]} nodes): ' + ', '.join(
                f'{part} {c["share"]:.0%}' for part, c in p['components'].items()))
    for name, v in summary[f'variants_{keys[0]}'].items():
        print(f'{keys[0]} {name}: {v["speedup_vs_transformer"]:.1f}x the Transformer, '
              f'{v["latency_vs_deployed"]:.2f}x the deployed latency')
    print(f'{keys[0]} with spinning ORT workers: deployed '
          f'{summary["with_spinning_workers"]["speedup_deployed_vs_transformer"]:.1f}x the Transformer')


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='5 timed rounds instead of 15')
    parser.add_argument('--output', default=str(ROOT / 'bench' / 'results' / 'models.json'))
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(THREADS)
    rounds = 5 if args.quick else 15
    start, load_before = time.time(), os.getloadavg()[0]
    models = build_models()
    with torch.no_grad(), tempfile.TemporaryDirectory() as tmp:
        results, profiles = measure(models, rounds, Path(tmp))
        summary = ratios(results)
        summary['with_spinning_workers'] = spinning_check(Path(tmp), rounds)
    report = {
        'script': 'bench/bench_models.py', 'quick': args.quick, 'rounds': rounds, 'ort_threads': THREADS,
        'onnxruntime': ort.__version__, 'torch': torch.__version__, 'cpu': platform.processor() or platform.machine(),
        'cpu_count': os.cpu_count(), 'load_avg_1m_before': load_before, 'load_avg_1m': os.getloadavg()[0],
        'seconds': time.time() - start, 'models': results, 'summary': summary, 'profiles': profiles,
    }
    print_table(results, summary, profiles)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + '\n')
    print(f'wrote {args.output} in {report["seconds"]:.0f} s')
    return report


if __name__ == '__main__':
    main()
