"""End-to-end runs of training/distill.py on tiny synthetic data: DDP, kill + resume, NaN, bad input."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_run import load_distill_module, tiny_overrides

from disdepth.build import load_model
from disdepth.checkpoint import load_checkpoint, read_meta
from disdepth.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / 'training' / 'distill.py'
DEMO = ROOT / 'config' / 'training' / 'synthetic_demo.yaml'
VENV_BIN = Path(sys.executable).parent
# the demo's teacher checkpoint does not exist in tests: a randomly initialised small teacher stands in
NO_TEACHER_CKPT = 'teacher.path=null'
# `python -c KILLED_AFTER_LOGGING SCRIPT ARGS...`: the script, SIGKILLed the moment it has logged step KILL_AT_STEP
# (environment), so the kill lands at the same point of the run however fast the machine is
KILLED_AFTER_LOGGING = """
import os, runpy, signal, sys
from disdepth.run_log import RunLogger
log = RunLogger.log
def log_then_die(self, step, *args, **kwargs):
    log(self, step, *args, **kwargs)
    if step == int(os.environ['KILL_AT_STEP']):
        os.kill(os.getpid(), signal.SIGKILL)
RunLogger.log = log_then_die
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""


def _env() -> dict:
    return {**os.environ, 'OMP_NUM_THREADS': '1'}  # disdepth is installed (make setup): no path to add


def _run(args: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    """Run a command in its own session; on timeout kill the whole group (torchrun's workers included),
    so a hung run fails this test without leaving orphans that load the machine for the rest of the suite."""
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT,
                          start_new_session=True) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            raise AssertionError(f'timed out after {timeout} s: {args}\n{stderr[-3000:]}') from None
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)


def _losses(run_dir: Path) -> dict[int, dict]:
    rows = [json.loads(line) for line in (run_dir / 'metrics.jsonl').read_text().splitlines()]
    return {r['step']: {k: r[k] for k in ('loss', 'silog_student', 'silog_teacher', 'kd')} for r in rows}


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu_trains_and_checkpoints(tmp_path):
    """torchrun --nproc_per_node=2 (gloo) trains a few steps and rank 0 writes one checkpoint set."""
    out = tmp_path / 'ddp'
    result = _run([str(VENV_BIN / 'torchrun'), '--standalone', '--nproc_per_node=2', str(SCRIPT),
                   '--config', str(DEMO), *tiny_overrides(out, trainer__max_steps=2), NO_TEACHER_CKPT])
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in (out / 'checkpoints').iterdir()) == ['best.json', 'best.pt', 'last.json',
                                                                      'last.pt']
    assert read_meta(out / 'checkpoints' / 'last.pt')['step'] == 2
    assert sorted(_losses(out)) == [1, 2]
    assert len(load_checkpoint(out / 'checkpoints' / 'last.pt')['rng']) == 2  # one RNG state per rank


@pytest.mark.slow
def test_sigkill_then_resume_continues_the_step_counter_and_loss_curve(tmp_path):
    """A run killed after a checkpoint (step 2) and a logged step past it (3), resumed, logs the same losses as an
    uninterrupted run (fixed seeds, restored RNG/sampler/optimiser/scheduler): the curve continues from the
    checkpoint. The kill came when the test first saw the checkpoint, which a fast machine could outrun to the end
    of the run."""
    steps = 8
    base = [sys.executable, str(SCRIPT), '--config', str(DEMO)]
    # the reference run in-process (one interpreter start less); same single thread as the subprocesses
    load_distill_module().main(['--config', str(DEMO), *tiny_overrides(tmp_path / 'full', trainer__max_steps=steps),
                                 NO_TEACHER_CKPT])

    killed_dir = tmp_path / 'killed'
    args = tiny_overrides(killed_dir, trainer__max_steps=steps) + [NO_TEACHER_CKPT]
    killed = subprocess.run([sys.executable, '-c', KILLED_AFTER_LOGGING, str(SCRIPT), '--config', str(DEMO), *args],
                            capture_output=True, text=True, env={**_env(), 'KILL_AT_STEP': '3'}, cwd=ROOT,
                            timeout=240, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    killed_at = read_meta(killed_dir / 'checkpoints' / 'last.pt')['step']
    assert killed_at == 2 and sorted(_losses(killed_dir)) == [1, 2, 3]

    resumed = _run(base + args + ['--resume'])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    want, got = _losses(tmp_path / 'full'), _losses(killed_dir)
    assert sorted(got) == list(range(1, steps + 1))  # no gap, no duplicate steps
    for step in range(killed_at + 1, steps + 1):
        assert got[step] == pytest.approx(want[step], rel=1e-5, abs=1e-6), f'step {step}'
    assert read_meta(killed_dir / 'checkpoints' / 'last.pt')['step'] == steps


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    """A NaN loss at step 3 stops training naming step 3; last.pt still holds step 2 and loads."""
    from disdepth.distill.task import DistillationTask
    forward = DistillationTask.forward
    calls = {'n': 0}

    def nan_from_third_step(self, batch, kd_active=True, diagnose=False, keep_attention=False):
        out = forward(self, batch, kd_active, diagnose, keep_attention)
        calls['n'] += 1
        if calls['n'] >= 3:
            out['loss'] = out['loss'] * float('nan')
        return out

    monkeypatch.setattr(DistillationTask, 'forward', nan_from_third_step)
    distill = load_distill_module()
    out = tmp_path / 'nan'
    with pytest.raises(distill.NonFiniteLossError, match='at step 3'):
        distill.main(['--config', str(DEMO), *tiny_overrides(out, trainer__max_steps=6), NO_TEACHER_CKPT])
    assert read_meta(out / 'checkpoints' / 'last.pt')['step'] == 2
    model, _ = load_model(out / 'checkpoints' / 'last.pt')
    with torch.no_grad():
        assert torch.isfinite(model(torch.rand(1, 3, 32, 64))['depth']).all()


def test_resume_with_another_max_steps_is_refused_at_start(tmp_path, capsys):
    """Training 4 steps, then --resume with trainer.max_steps=8 stops before any step with one line saying what
    to do (exit 2); last.pt and metrics.jsonl are untouched, and resuming with the run's own max_steps works.

    It died after the first resumed step with the LR scheduler's traceback ("Tried to step 5 times").
    """
    distill = load_distill_module()
    out = tmp_path / 'run'
    args = ['--config', str(DEMO), *tiny_overrides(out, trainer__max_steps=4), NO_TEACHER_CKPT]
    assert distill.cli(args) == 0
    capsys.readouterr()
    before = (out / 'checkpoints' / 'last.pt').read_bytes(), (out / 'metrics.jsonl').read_text()
    assert distill.cli(args + ['trainer.max_steps=8', '--resume']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('distill.py: error: --resume:')
    assert 'trainer.max_steps=4' in err and 'Traceback' not in err
    assert ((out / 'checkpoints' / 'last.pt').read_bytes(), (out / 'metrics.jsonl').read_text()) == before
    assert distill.cli(args + ['--resume']) == 0  # nothing left to do, and no complaint
    assert read_meta(out / 'checkpoints' / 'last.pt')['step'] == 4


def test_missing_config_or_checkpoint_is_bad_input(tmp_path, capsys):
    """A config file that does not exist and --resume without a checkpoint exit 2 with one line, as every bad
    input does; they gave a FileNotFoundError traceback and exit 1."""
    distill = load_distill_module()
    assert distill.cli(['--config', str(tmp_path / 'nope.yaml')]) == 2
    assert capsys.readouterr().err == f'distill.py: error: config file not found: {tmp_path / "nope.yaml"}\n'
    assert distill.cli(['--config', str(DEMO), f'output_dir={tmp_path / "new"}', '--resume']) == 2
    err = capsys.readouterr().err
    assert err.startswith('distill.py: error: --resume: no checkpoint at') and err.count('\n') == 1


def test_config_errors_are_clear(tmp_path, capsys):
    """Unknown keys and wrong types name the key; a non-depth teacher path gives one clear CLI line."""
    distill = load_distill_module()
    with pytest.raises(ConfigError, match="unknown config key 'distill.ghost'"):
        distill.main(['--config', str(DEMO), 'distill.ghost=true'])
    with pytest.raises(ConfigError, match='trainer.max_steps: expected int'):
        distill.main(['--config', str(DEMO), 'trainer.max_steps=many'])
    from transformers import ViTConfig
    ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16).save_pretrained(
        tmp_path / 'vit')
    code = distill.cli(['--config', str(DEMO), 'teacher.kind=hf', f'teacher.path={tmp_path / "vit"}',
                        *tiny_overrides(tmp_path / 'bad')[:4]])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith('distill.py: error: teacher.path=') and "'vit' model; supported" in err


def test_augmentation_does_not_depend_on_which_modules_the_config_builds(tmp_path, monkeypatch):
    """Ablation rows with one seed are compared seed by seed, so a row that builds more modules
    (here LGConv and the KD parts) must still draw the same augmentations: the same first item RNG state."""
    from disdepth.data import synthetic
    draws = []
    item_rng = synthetic.item_rng

    def recording_item_rng():
        draws.append(torch.random.get_rng_state())
        return item_rng()

    monkeypatch.setattr(synthetic, 'item_rng', recording_item_rng)
    distill = load_distill_module()
    first = {}
    for name, extra in {'plain': {'model__lgconv__enabled': 'false', 'distill__enabled': 'false'},
                        'full': {'model__lgconv__enabled': 'true'}}.items():
        draws.clear()
        assert distill.main(['--config', str(DEMO), NO_TEACHER_CKPT, *tiny_overrides(
            tmp_path / name, trainer__max_steps=1, data__augment='true', **extra)]) == 0
        first[name] = draws[0]
    assert torch.equal(first['plain'], first['full'])
