"""Render the generated tables of the docs between `<!-- NAME -->` and `<!-- /NAME -->` markers.

`bench:NAME` blocks (README.md, docs/results.md): bench/results/NAME.json as markdown. Only numbers read from
the JSON files appear; a table whose JSON is missing keeps its old text.
`parameters` block (docs/node.md): the node's parameters from depth_kd_ros.params.SPECS, the table the node
builds its ParameterDescriptors from.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from depth_kd_ros.params import SPECS
from disdepth.seed_statistics import interval, paired

#: the files holding generated tables, relative to the repository root
DOCUMENTS = ('README.md', 'docs/results.md', 'docs/node.md')

METRICS = ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'd1', 'd2', 'd3')


def _row(cells) -> str:
    return '| ' + ' | '.join(str(c) for c in cells) + ' |'


def _table(header, rows) -> str:
    return '\n'.join([_row(header), _row(['---'] * len(header)), *(_row(r) for r in rows)])


def _goal(ok: bool) -> str:
    return 'met' if ok else '**missed**'


def _architecture(m: dict) -> str:
    lg = m['lgconv']
    where = f'last {lg["per_stage"]} per stage' if lg['per_stage'] else 'all'
    lgconv = (f'LGConv on stages {lg["stages"]} ({where}, r={lg["reduction"]}, W_o {lg["depthwise_proj"]})'
              if lg['enabled'] else 'no LGConv')
    separable = m['decoder_separable_steps']
    decoder = f'decoder {m["decoder_channels"]}' + (f' (steps {separable} separable)' if separable else ' (dense)')
    return f'{m["backbone"]}, {lgconv}, {decoder}, {m["head"]} head ({m["num_bins"]} bins)'


def models_table(report: dict) -> str:
    summary = report['summary']
    sizes = [k for k in summary if k[0].isdigit()]
    variants_key = next(k for k in summary if k.startswith('variants_'))
    variants = summary[variants_key]
    rows = [[name, f'{r["params_m"]:.2f}'] + [
        f'{r[k]["gflops"]:.1f} / {r[k]["latency_ms"]:.1f}' if k in r else '-' for k in sizes]
        for name, r in report['models'].items() if name not in variants]
    text = _table(['model', 'params (M)'] + [f'{k}: GFLOPs / ms' for k in sizes], rows)
    s = {k: summary[k] for k in sizes}
    pair = ' and '.join
    lines = [
        f'- Deployed student `{summary["deployed"]}` ({summary["deployed_config"]}: '
        f'{_architecture(summary["deployed_model"])}): '
        + pair(f'**{s[k]["speedup_deployed_vs_transformer"]:.1f}x**' for k in sizes)
        + f' faster than the Transformer at {pair(sizes)} (goal 10x: '
        + ', '.join(_goal(s[k]['targets']['deployed_speedup_ge_10x']) for k in sizes) + '); LGConv adds '
        + pair(f'**{s[k]["lgconv_overhead_mobilenet_v2"]:+.1%}**' for k in sizes) + ' (goal <= 15 %: '
        + ', '.join(_goal(s[k]['targets']['mobilenet_v2_lgconv_overhead_le_15pct']) for k in sizes)
        + '). Its backbone alone: ' + pair(f'{s[k]["speedup_mobilenet_v2_backbone_vs_transformer"]:.1f}x'
                                           for k in sizes) + '.',
        f'- ResNet-18 student of the paper configs ({summary["paper_config"]}): LGConv adds '
        + pair(f'{s[k]["lgconv_overhead_resnet18"]:+.1%}' for k in sizes) + ' (goal <= 15 %: '
        + ', '.join(_goal(s[k]['targets']['resnet18_lgconv_overhead_le_15pct']) for k in sizes)
        + '); ResNet-18+LGConv is ' + pair(f'{s[k]["speedup_resnet18_lgconv_vs_transformer"]:.1f}x' for k in sizes)
        + ' the Transformer (goal 8x: ' + ', '.join(
            _goal(s[k]['targets']['resnet18_lgconv_speedup_ge_8x']) for k in sizes) + ').',
        f'- At {variants_key.split("_", 1)[1]}, the deployed student with keys set back to the student deployed before '
        'it (latency relative to the deployed one; speed-up over the Transformer): ' + '; '.join(
            f'`{name}` {v["latency_vs_deployed"]:.2f}x, {v["speedup_vs_transformer"]:.1f}x'
            for name, v in variants.items())
        + f' (its LGConv: {variants["mobilenet_v2_former"]["lgconv_overhead"]:+.1%}).',
        f'- Measured with ONNX Runtime\'s default spinning workers instead of the node\'s settings (each session\'s '
        'idle worker then spins on and takes a core from the model timed next), the deployed student is only '
        f'{summary["with_spinning_workers"]["speedup_deployed_vs_transformer"]:.1f}x the Transformer at '
        f'{summary["with_spinning_workers"]["size"]}: the settings this benchmark used before the speed work.',
    ]
    for key, profiles in report['profiles'].items():
        lines.append(f'- Where the time goes at {key} (ONNX Runtime profiler, kernel time per run, share by part): '
                     + '; '.join(f'`{name}` {p["kernel_ms_per_run"]:.0f} ms, {p["nodes"]} nodes: ' + ', '.join(
                         f'{part} {c["share"]:.0%}' for part, c in p['components'].items() if c['share'] >= 0.005)
                         for name, p in profiles.items()) + '.')
    return (text + '\n\n' + '\n'.join(lines) + f'\n\nONNX Runtime {report["onnxruntime"]}, {report["ort_threads"]} '
            f'threads, median of {report["rounds"]} interleaved rounds, ratios paired per round; 1-min load average '
            f'{report["load_avg_1m_before"]:.1f} before and {report["load_avg_1m"]:.1f} after, on '
            f'{report["cpu_count"]} cores (other processes share them: compare ratios, not milliseconds).')


def _levels(values: dict, name: str, when: str) -> str:
    """'a/b/c/d' of a per-scale diagnostic (scales 1..4), '-' when the row has none."""
    found = [values[f'{name}_{level}'][when] for level in range(1, 5) if f'{name}_{level}' in values]
    return '/'.join(f'{v:.2f}' for v in found) or '-'


def _diagnostics_table(rows: dict) -> str:
    """The distillation diagnostics (disdepth/distill/diagnostics.py) per row, mean over seeds."""
    lines = []
    for name, row in rows.items():
        d = row.get('diagnostics')
        if d is None:
            continue
        fam = (f'{_levels(d, "fam_cosine", "first")} → {_levels(d, "fam_cosine", "final")}'
               if 'fam_cosine_1' in d else '-')
        lgconv = (f'{d["lgconv_0_gamma_abs_mean"]["final"]:.3f} / {d["lgconv_0_gamma_abs_max"]["final"]:.3f} / '
                  f'{d["lgconv_0_gate_mean"]["final"]:.2f} / {d["lgconv_0_branch_ratio"]["final"]:.3f}'
                  if 'lgconv_0_gamma_abs_mean' in d else '-')
        ghost = (f'{d["silog_teacher"]["first"]:.1f} → {d["silog_teacher"]["final"]:.1f}'
                 if 'silog_teacher' in d else '-')
        lines.append([name, fam, _levels(d, 'lam_entropy', 'final'), _levels(d, 'lam_edge_mass', 'final'),
                      _levels(d, 'lam_far_mass', 'final'), lgconv, ghost, f'{d["silog_student"]["final"]:.1f}'])
    if not lines:
        return ''
    header = ['row', 'FAM cosine, scales 1-4: first → final', 'LAM entropy', 'LAM edge share (uniform: 0.2)',
              'LAM far share (uniform: 0.33)', 'LGConv abs(γ) mean / max, gate, branch ratio',
              'ghost SILog first → final', 'student SILog']
    return '\n\n' + _table(header, lines)


def ablation_table(report: dict) -> str:
    names = list(report['rows'])
    rows = []
    for i, name in enumerate(names):
        per_seed = report['rows'][name]['metrics']
        stats = interval(per_seed['abs_rel']['per_seed'])
        ci = f' ± {stats["ci95"]:.3f}' if stats['ci95'] is not None else ''
        std = f'{stats["std"]:.3f}' if stats['std'] is not None else '-'
        verdict = ['', '']
        above = report['rows'][names[i - 1]]['metrics']['abs_rel']['per_seed'] if i else []
        if stats['n'] > 1 and len(above) > 1:  # the teacher (one run) is compared with nothing
            diff = paired(above, per_seed['abs_rel']['per_seed'])
            verdict = [f'{diff["mean_diff"]:+.4f} ± {diff["ci95"]:.4f}',
                       ('**resolved: better**' if diff['mean_diff'] < 0 else '**resolved: worse**')
                       if diff['resolved'] else 'not resolved']
        rows.append([name, f'{stats["mean"]:.3f}{ci}', std,
                     *(f'{interval(per_seed[k]["per_seed"])["mean"]:.3f}' for k in ('rmse', 'd1')), *verdict])
    h, w = report['image_size']
    seeds = report['seeds']
    return (_table(['row', 'abs_rel, mean ± 95 % CI', 'std', 'rmse', 'd1', 'Δ abs_rel vs row above ± 95 % CI (paired)',
                    'verdict'], rows)
            + f'\n\nSynthetic outdoor, {h}x{w}, {report["student_steps"]} student steps, batch {report["batch_size"]}, '
            f'{report["held_out_images"]} held-out images, {len(seeds)} seeds {seeds} (mode `{report["mode"]}`). '
            'Intervals: mean ± t(0.975, n−1)·s/√n over seeds. Adjacent rows are compared seed by seed: same data '
            'order, augmentation and student initialisation, LGConv\'s branch aside. Δ = row − row above (negative: '
            'better). It is resolved when the 95 % interval of the paired differences excludes 0. That half-width is '
            'the smallest difference this run can resolve. Per-seed values and each run\'s exact command are in '
            'bench/results/ablation.json.' + _diagnostics_table(report['rows']))


def step_time_table(report: dict) -> str:
    rows = [[name.removesuffix('_s').replace('_', ' '), f'{report[name] * 1000:.0f}']
            for name in ('distill_step_s', 'student_step_s', 'teacher_forward_s')]
    h, w = report['image_size']
    return (_table(['one training step', 'ms (median)'], rows)
            + f'\n\nRatio distillation step / (student step + teacher forward): **{report["ratio"]:.2f}** '
            f'(goal <= {report["goal_ratio"]}); {h}x{w}, batch {report["batch_size"]}, {report["device"]}, '
            f'{report["threads"]} thread(s).')


TRANSPORT_LABELS = {'node_profile': "node's Fast DDS profile", 'default': 'Fast DDS default',
                    'LARGE_DATA': 'Fast DDS LARGE_DATA'}
CAMERA_BLOCKS = {'rectify': 'rectify (maps cached), per frame',
                 'rectify_map_build': 'rectify map build, once per calibration',
                 'ground_fit': 'ground-plane fit, per frame', 'depth_16uc1': '16UC1 depth encoding, per frame'}


def node_table(report: dict) -> str:
    runs = report['fastdds_transports']
    names = list(runs)
    stages = list(runs[names[0]]['stages'])
    rows = [[stage] + [f'{runs[n]["stages"][stage]["p50_ms"]:.2f}' for n in names] for stage in stages]
    rows.append(['node end to end (camera publish to depth received)']
                + [f'{runs[n]["node_end_to_end"]["p50_ms"]:.1f}' for n in names])
    h, w = report['image']
    overload = report.get('node_overload')  # absent from results older than the overload figure
    overload_line = ('' if overload is None else
                     f' Camera at {overload["rate_hz"]:.0f} Hz, faster than the node (keep-latest): '
                     f'{overload["frames_answered"]}/{overload["frames_sent"]} frames answered at '
                     f'{overload["answered_rate_hz"]:.1f} Hz, latency p50 {overload["p50_ms"]:.0f} ms, p90 '
                     f'{overload["p90_ms"]:.0f} ms (Fast DDS default).')
    return (_table(['stage (p50 ms)'] + [TRANSPORT_LABELS.get(n, f'Fast DDS {n}') for n in names], rows)
            + f'\n\n{w}x{h} input, model {report["model"]}, ONNX Runtime CPU {report["ort_threads"]} threads, '
            f'{report["frames"]} frames. Goal: everything but the model <= '
            f'{report["goal"]["non_model_p50_ms_at_most"]} ms p50 (`non_model`)' + _node_goal(report) + overload_line
            + _camera_blocks_table(report.get('camera_blocks')) + _delivery_table(report.get('delivery_all_outputs')))


def _node_goal(report: dict) -> str:
    """Met or missed by how much, per transport (absent from results older than the 5 ms goal's verdict)."""
    goal = report.get('goal')
    if goal is None:
        return '.'
    verdicts = [f'{TRANSPORT_LABELS.get(n, n)} {_goal(v["met"])}'
                + ('' if v['met'] else f' by {v["missed_by_ms"]:.2f} ms') for n, v in goal['per_transport'].items()]
    load = report.get('load_average_1min_before')
    return (': ' + ', '.join(verdicts) + '.' + ('' if load is None else
            f' 1-min load average {load:.1f} to {report["load_average_1min"]:.1f} on 2 cores (shared).'))


def _camera_blocks_table(blocks: dict | None) -> str:
    """The robot-camera blocks alone at 640x480 (rectify, ground-plane fit, 16UC1; absent from older results)."""
    if blocks is None:
        return ''
    rows = [[CAMERA_BLOCKS.get(name, name), f'{v["p50_ms"]:.2f}', f'{v["min_ms"]:.2f}'] for name, v in blocks.items()]
    return ('\n\n' + _table(['robot-camera block, alone at 640x480', 'p50 ms', 'min ms'], rows)
            + '\n\nThese are not in the stage table: their parameters are off by default. When on, rectify '
            '(`rectify`, plumb_bob) and the ground-plane fit (`scale_correction: ground_plane`) add their per-frame '
            'time to `non_model`. 16UC1 (`depth_encoding`) replaces the 32FC1 depth message.')


def _delivery_table(delivery: dict | None) -> str:
    """Delivery with every output subscribed (absent from results older than the delivery figure)."""
    if delivery is None:
        return ''
    labels = {'node_default': "node's default (config/fastdds_large_outputs.xml)",
              'fastdds_defaults': "Fast DDS's defaults"}
    rows = []
    for name, label in labels.items():
        run, total = delivery[name], delivery[name]['all_outputs']
        rows.append([label, f'{total["delivered"]}/{total["expected"]}', f'{total["p50_ms"]:.0f}',
                     f'{total["p99_ms"]:.0f}', f'{total["max_ms"]:.0f}', f'{run["node_latency_p50_ms"]:.0f}'])
    return ('\n\n' + _table(['every output subscribed (reliable)', 'messages delivered', 'p50 ms', 'p99 ms',
                               'max ms', "node's own p50 ms"], rows)
            + f'\n\nCamera publish to receipt of depth, depth/camera_info, depth/colored, depth/uncertainty and '
            f'points in another process, {delivery["frames"]} frames at {delivery["rate_hz"]:.0f} Hz, subscriber '
            f'history {delivery["subscriber_history"]}, 1-min load average {delivery["load_average_1min"]:.1f} '
            'on 2 cores.')


def teacher_table(report: dict) -> str:
    """Day one's pretrained model against the deployed student in the node (bench/bench_teacher.py)."""
    stages, ratios, node = report['stages'], report['ratio_teacher_over_student'], report['node_end_to_end']
    rows = [[stage, f'{stages["student"][stage]["p50_ms"]:.2f}', f'{stages["teacher"][stage]["p50_ms"]:.2f}',
             f'{ratios[stage]:.2f}'] for stage in stages['student']]
    node_ratio = ratios['node_end_to_end_p50']
    rows.append(['node end to end (camera publish to depth received)',
                 *(f'{node[name]["p50_ms"]:.0f}' if 'p50_ms' in node[name] else '-' for name in ('student', 'teacher')),
                 '-' if node_ratio is None else f'{node_ratio:.2f}'])
    models = '; '.join(f'{name}: {m["model"]}, input {m["input"][0]}x{m["input"][1]}, exported in '
                       f'{m["export_s"]:.0f} s, {m["file_mb"]:.1f} MB' for name, m in report['models'].items())
    answered = ', '.join(f'{name} {node[name]["frames_answered"]}/{node[name]["frames_sent"]} frames answered at '
                         f'{node[name]["answered_rate_hz"]:.1f} Hz' for name in ('student', 'teacher'))
    h, w = report['image']
    return (_table(['stage (p50 ms)', 'student', 'teacher', 'teacher / student'], rows)
            + f'\n\nPer frame, the teacher\'s end to end over the student\'s: median '
            f'**{ratios["end_to_end_per_frame_median"]:.1f}x** ({report["frames"]} frames of {w}x{h}, the two models '
            f'interleaved in one process, {TRANSPORT_LABELS[report["transport"]]}). Models: {models}. Through the '
            f'node with the camera at {report["node_rate_hz"]:g} Hz: {answered}. ONNX Runtime '
            f'{report["onnxruntime"]} CPU, {report["ort_threads"]} threads; 1-min load average '
            f'{report["load_average_1min_before"]:.1f} before and {report["load_average_1min"]:.1f} after, on '
            f'{report["machine"]["cpus"]} cores.')


def offline_table(report: dict) -> str:
    goal, load = report['goal_ratio_vs_model'], report['load_average_1min']
    rows = [[mode, f'{m["model_frames_per_s"]:.1f}', f'{m["frames_per_s"]:.1f}', f'**{m["ratio_vs_model"]:.2f}**',
             'met' if m['goal_met'] else f'missed by {goal - m["ratio_vs_model"]:.2f}',
             f'{m["sequential_frames_per_s"]:.1f} ({m["sequential_ratio_vs_model"]:.2f})']
            for mode, m in report['modes'].items()]
    return (_table(['mode', 'model alone: frames/s', 'mono_depth_offline: frames/s', 'tool / model',
                    f'goal ≥ {goal}', 'stages one after another: frames/s (/ model)'], rows)
            + f'\n\n{report["frames"]["count"]} frames of {report["frames"]["size"]}, model '
            f'{report["model"]["name"]} at {report["model"]["input"]} ({report["model_latency_ms_median"]:.0f} ms per '
            f'frame alone), medians of {report["repeats_per_mode"]} repeats, each command right after the model '
            f'alone on the same frames; 1-min load average {load["min"]:.1f}-{load["max"]:.1f} on '
            f'{report["machine"]["cpus"]} cores.')


def recordings_table(report: dict) -> str:
    rows = [[name, f'{c["first_pass_frames_per_s"]:.1f}', f'{c["epoch_frames_per_s"]:.0f}']
            for name, c in report['cases'].items()]
    train, labels = report['training'], report['teacher_labels']
    h, w = train['image_size']
    first = [c['first_pass_frames_per_s'] for c in report['cases'].values()]
    cached = [c['epoch_frames_per_s'] / c['first_pass_frames_per_s'] for c in report['cases'].values()]
    return (_table(['recording', 'first pass (read, decode, cache): frames/s', 'later epochs (cache): frames/s'], rows)
            + f'\n\n{report["frames"]} frames of {report["size"]} at {report["rate_hz"]:g} Hz, model input {h}x{w}: '
            f'a distillation step (batch {train["batch_size"]}) takes {train["distill_step_s"] * 1000:.0f} ms, '
            f'{train["frames_per_s"]:.1f} frames/s. So the first pass decodes {min(first) / train["frames_per_s"]:.0f}-'
            f'{max(first) / train["frames_per_s"]:.0f}x faster than training consumes frames, and later epochs read '
            f'the cache {min(cached):.0f}-{max(cached):.0f}x faster still. Teacher pseudo-labels (small Transformer, '
            f'`data.depth_topic=null`): {labels["frames_per_s"]:.1f} frames/s, once. {report["threads"]} torch '
            f'thread(s), 1-min load average {report["load_avg_1m"]:.1f} on {report["cpu_count"]} cores.')


def synthetic_table(report: dict) -> str:
    rows = [[c['preset'], f'{c["height"]}x{c["width"]}', f'{c["images_per_s"]:.1f}', f'{c["images_per_cpu_s"]:.1f}']
            for c in report['cases']]
    return _table(['preset', 'size', 'images/s (wall, 1 core)', 'images per CPU-second'], rows)


def demo_table(report: dict) -> str:
    rows = [[name, *(f'{m[k]:.3f}' for k in METRICS)] for name, m in report['models'].items()]
    node = report['node']
    return (_table(['model (make demo)', *METRICS], rows)
            + f"\n\nThe node's published depth against ground truth: abs_rel **{node['abs_rel_vs_gt']:.3f}**, "
            f"{node['frames_answered']}/{node['frames_sent']} frames answered, latency p50 "
            f"{node['latency_ms_p50']:.0f} ms, {node['rate_hz']:.1f} Hz (profile `{report['profile']}`, "
            f"{report['wall_time_s'] / 60:.1f} min in all).")


RENDERERS = {
    'demo': ('demo.json', demo_table),
    'models': ('models.json', models_table),
    'ablation': ('ablation.json', ablation_table),
    'step_time': ('step_time.json', step_time_table),
    'node': ('node.json', node_table),
    'teacher': ('teacher.json', teacher_table),
    'offline': ('offline.json', offline_table),
    'recordings': ('recordings.json', recordings_table),
    'synthetic': ('synthetic.json', synthetic_table),
}


def _cell(value) -> str:
    """A parameter's default or bound as it is written in YAML and on the command line."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return repr(value) if value == '' else str(value)


def parameters_table() -> str:
    """Every field of ``depth_kd_ros.params.SPECS``: name, type, default, allowed values, runtime, description."""
    rows = []
    for name, spec in SPECS.items():
        meta = spec.metadata
        allowed = (', '.join(f'`{c}`' for c in meta['choices']) if meta['choices'] is not None
                   else f'{_cell(meta["low"])} to {_cell(meta["high"])}' if meta['low'] is not None else '')
        rows.append([f'`{name}`', type(spec.default).__name__, f'`{_cell(spec.default)}`', allowed,
                     'yes' if meta['runtime'] else 'no', meta['description'].replace('|', '\\|')])
    return _table(['parameter', 'type', 'default', 'allowed', 'runtime', 'meaning'], rows)


def _replace_block(text: str, marker: str, render) -> str | None:
    """``text`` with the block between ``<!-- marker -->`` and ``<!-- /marker -->`` rendered anew; None without it."""
    pattern = re.compile(rf'(<!-- {marker} -->\n).*?(\n<!-- /{marker} -->)', re.S)
    if not pattern.search(text):
        return None
    table = render()
    return pattern.sub(lambda m: m.group(1) + table + m.group(2), text)


def update_tables(document: Path, results: Path) -> list:
    """Replace each marked block of ``document`` with its table; returns the names updated."""
    text, updated = document.read_text(), []
    blocks = {f'bench:{name}': (lambda path=results / filename, render=render: render(json.loads(path.read_text())))
              for name, (filename, render) in RENDERERS.items() if (results / filename).is_file()}
    blocks['parameters'] = parameters_table
    for marker, render in blocks.items():
        new = _replace_block(text, marker, render)
        if new is not None:
            text = new
            updated.append(marker.removeprefix('bench:'))
    document.write_text(text)
    return updated
