"""`make demo`: the whole product on a fresh machine, with no GPU, dataset or internet, on the embedded
synthetic dataset.

Stages, each the command a user would type (so the demo proves the CLIs, not a private shortcut):
  1. train the small Transformer teacher          training/distill.py  synthetic_teacher.yaml
  2. train the student without KD (baseline)      training/distill.py  synthetic_demo.yaml distill.enabled=false
  3. distil the LGConv student from the teacher   training/distill.py  synthetic_demo.yaml teacher.path=...
  4. evaluate all three on held-out images        training/evaluate.py
  5. export the distilled student to ONNX         training/export.py
  6. run the real mono_depth_node on it, replay a synthetic camera over ROS 2, record depth and points
Writes demo_out/: summary.json, metrics per model, previews (image | ground truth | teacher | student),
one published point cloud as PLY, the node's log.

    python scripts/demo.py [--profile tiny|default|long] [--out demo_out]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from ros_replay import replay

from depth_kd_ros.camera.pointcloud import write_ply
from depth_kd_ros.colorize import colorize
from disdepth.data.synthetic import SyntheticScenes
from disdepth.metrics import MetricAverager, compute_metrics, format_table

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Profile:
    """Sizes and step counts of one demo run. Images are height x width pixels (multiples of 32)."""

    height: int
    width: int
    teacher_steps: int
    student_steps: int
    batch_size: int
    num_test: int
    frames: int
    rate_hz: float


PROFILES = {
    'tiny': Profile(height=64, width=192, teacher_steps=10, student_steps=10, batch_size=2, num_test=2,
                    frames=4, rate_hz=4.0),
    # measured on an idle 2-core machine: 0.22 s per teacher step, 0.42 per student step, 0.57 per
    # distillation step at 64x224, batch 8 -> about 12 minutes in all
    'default': Profile(height=64, width=224, teacher_steps=1000, student_steps=450, batch_size=8, num_test=64,
                       frames=40, rate_hz=5.0),
    'long': Profile(height=96, width=320, teacher_steps=6000, student_steps=3000, batch_size=8, num_test=200,
                    frames=100, rate_hz=5.0),
}
TEST_SEED = 12345  # held-out scenes: training uses other seeds


def _run(args: list, log_name: str, out: Path) -> None:
    """Run one CLI stage with its output shown (progress bars) and kept in out/logs/."""
    print(f'\n==> {" ".join(str(a) for a in args[1:])}', flush=True)
    (out / 'logs').mkdir(parents=True, exist_ok=True)
    result = subprocess.run([str(a) for a in args], cwd=ROOT, check=False)
    if result.returncode != 0:
        raise SystemExit(f'demo stage failed ({log_name}, exit {result.returncode}); see the output above')


def _common(profile: Profile, out_dir: Path, steps: int) -> list:
    return [f'output_dir={out_dir}', f'trainer.max_steps={steps}', f'data.height={profile.height}',
            f'data.width={profile.width}', f'data.eval_height={profile.height}', f'data.eval_width={profile.width}',
            f'data.batch_size={profile.batch_size}', f'data.num_test={profile.num_test}']


def train_and_evaluate(profile: Profile, out: Path) -> dict:
    """Stages 1-5. Returns {'teacher': ckpt, 'student_no_kd': ckpt, 'student_distilled': ckpt, 'onnx': path}."""
    py, cfg_dir = sys.executable, ROOT / 'config' / 'training'
    runs = {name: out / 'runs' / name for name in ('teacher', 'student_no_kd', 'student_distilled')}
    ckpt = {name: run / 'checkpoints' / 'last.pt' for name, run in runs.items()}
    _run([py, 'training/distill.py', '--config', cfg_dir / 'synthetic_teacher.yaml',
          *_common(profile, runs['teacher'], profile.teacher_steps)], 'teacher', out)
    _run([py, 'training/distill.py', '--config', cfg_dir / 'synthetic_demo.yaml', 'distill.enabled=false',
          *_common(profile, runs['student_no_kd'], profile.student_steps)], 'student_no_kd', out)
    _run([py, 'training/distill.py', '--config', cfg_dir / 'synthetic_demo.yaml', f'teacher.path={ckpt["teacher"]}',
          *_common(profile, runs['student_distilled'], profile.student_steps)], 'student_distilled', out)
    for name, run in runs.items():
        _run([py, 'training/evaluate.py', '--config', run / 'config.yaml', '--checkpoint', ckpt[name],
              f'output_dir={out / "eval" / name}', f'data.num_test={profile.num_test}'], f'eval_{name}', out)
    onnx_path = out / 'student_distilled.onnx'
    _run([py, 'training/export.py', '--checkpoint', ckpt['student_distilled'], '--output', onnx_path],
         'export', out)
    return {**ckpt, 'onnx': onnx_path}


def held_out_frames(profile: Profile) -> list:
    """The camera sequence replayed to the node: held-out synthetic outdoor frames with exact depth."""
    scenes = SyntheticScenes('outdoor', profile.height, profile.width, seed=TEST_SEED)
    return [scenes.render(i) for i in range(profile.frames)]


def node_metrics(frames: list, recording, max_depth: float = 80.0) -> dict:
    """The node's published depth against ground truth, averaged over the frames it answered."""
    averager = MetricAverager()
    for index, depth in sorted(recording.depth.items()):
        gt = frames[index]['depth']
        mask = (gt > 1e-3) & (gt <= max_depth)
        averager.update(compute_metrics(depth, gt, mask))
    return averager.compute()


def write_previews(frames: list, checkpoints: dict, out: Path, count: int = 4) -> list:
    """PNG rows: image | ground truth | teacher | distilled student, one fixed depth range (turbo)."""
    import torch

    from disdepth.build import load_model

    models = {name: load_model(checkpoints[name])[0] for name in ('teacher', 'student_distilled')}
    paths = []
    (out / 'previews').mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames[:count]):
        image = torch.from_numpy(frame['image']).permute(2, 0, 1)[None].float() / 255.0
        panels = [cv2.cvtColor(frame['image'], cv2.COLOR_RGB2BGR), colorize(frame['depth'], 1.0, 80.0)]
        with torch.no_grad():
            for model in models.values():
                panels.append(colorize(model(image)['depth'][0, 0].numpy(), 1.0, 80.0))
        path = out / 'previews' / f'frame_{index:02d}.png'
        cv2.imwrite(str(path), np.concatenate(panels, axis=1))
        paths.append(path)
    return paths


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--profile', choices=sorted(PROFILES), default='default')
    parser.add_argument('--long', action='store_const', const='long', dest='profile',
                        help='longer, better run (same as --profile long)')
    parser.add_argument('--out', type=Path, default=ROOT / 'demo_out')
    parser.add_argument('--results', type=Path, help='also copy summary.json here (make bench: bench/results/)')
    args = parser.parse_args(argv)
    profile, out = PROFILES[args.profile], args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    artifacts = train_and_evaluate(profile, out)
    frames = held_out_frames(profile)
    print(f'\n==> mono_depth_node on {artifacts["onnx"].name}: replaying {len(frames)} frames at '
          f'{profile.rate_hz} Hz over ROS 2', flush=True)
    recording = replay(artifacts['onnx'], frames, profile.rate_hz, out / 'logs' / 'mono_depth_node.log')
    if not recording.depth or not recording.points:
        raise SystemExit(f'the node published no depth or no points; see {out / "logs" / "mono_depth_node.log"}')
    cloud_index = min(recording.points)
    write_ply(out / 'points.ply', recording.points[cloud_index])
    previews = write_previews(frames, artifacts, out)

    models = {name: json.loads((out / 'eval' / name / 'metrics.json').read_text())
              for name in ('teacher', 'student_no_kd', 'student_distilled')}
    latencies = sorted(recording.latency_s.values())
    received = recording.received_at
    node = {
        'abs_rel_vs_gt': node_metrics(frames, recording)['abs_rel'],
        'latency_ms_p50': 1000.0 * float(np.median(latencies)),
        'rate_hz': (len(received) - 1) / (received[-1] - received[0]) if len(received) > 1 else 0.0,
        'frames_sent': len(frames), 'frames_answered': len(recording.depth),
        'topics': sorted(recording.topics), 'points_in_ply': int(len(recording.points[cloud_index])),
    }
    summary = {'profile': args.profile, 'models': models, 'node': node,
               'wall_time_s': round(time.monotonic() - started, 1)}
    (out / 'summary.json').write_text(json.dumps(summary, indent=2))
    if args.results:
        args.results.write_text(json.dumps(summary, indent=2))

    print('\n' + format_table(models))
    print(f"\nnode: abs_rel vs ground truth {node['abs_rel_vs_gt']:.3f}, latency p50 {node['latency_ms_p50']:.1f} ms, "
          f"{node['frames_answered']}/{node['frames_sent']} frames answered at {node['rate_hz']:.1f} Hz")
    print(f'summary:  {out / "summary.json"}\npreviews: {previews[0].parent}\ncloud:    {out / "points.ply"}\n'
          f'total {summary["wall_time_s"]:.0f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
