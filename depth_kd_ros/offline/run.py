"""What both sub-commands of ``mono_depth_offline`` share: the user errors, the pipeline from the params file,
the output written under a temporary name, and the end-of-run summary (offline/cli.py runs them)."""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from depth_kd_ros.backends import BackendError
from depth_kd_ros.camera.calibration import CameraFileError
from depth_kd_ros.camera.model import CameraInfoError
from depth_kd_ros.frames import SkippedFrames, skipped_lines
from depth_kd_ros.io.bagio import BagError
from depth_kd_ros.io.image_codec import ImageDecodeError
from depth_kd_ros.io.image_files import ImageFolderError
from depth_kd_ros.io.package_files import PACKAGE, share_file
from depth_kd_ros.model_file import ModelFileError
from depth_kd_ros.params import ParameterError, load_params_file
from depth_kd_ros.pipeline import DepthPipeline, load_pipeline

PARAMS_FILE = Path('config') / 'mono_depth.yaml'


class OfflineError(ValueError):
    """Bad input or arguments; main() prints the message as one line and exits with status 2."""


#: every error that means "the input or the arguments are wrong", reported without a traceback
USER_ERRORS = (OfflineError, BagError, CameraFileError, ParameterError, ModelFileError, BackendError,
               CameraInfoError, ImageDecodeError, ImageFolderError)


def default_params_file() -> Path:
    """config/mono_depth.yaml of the source tree, else of an install (package_files.share_file)."""
    path = share_file(PARAMS_FILE)
    if path is not None:
        return path
    raise OfflineError(f'cannot find {PARAMS_FILE} of {PACKAGE}; pass --params-file')


def make_pipeline(args: argparse.Namespace, **overrides) -> DepthPipeline:
    """The node's DepthPipeline from the params file with --model, --backend and ``overrides`` applied.

    Raises:
        ParameterError, ModelFileError, BackendError: bad params file, model or backend.
    """
    params = load_params_file(str(args.params_file or default_params_file()))
    given = {'model_path': args.model, 'backend': args.backend}
    params = params.replace(**{k: v for k, v in given.items() if v is not None}, **overrides)
    if not params.model_path:
        raise OfflineError('no model: pass --model PATH (or set model_path in the params file)')
    if not Path(params.model_path).is_file():
        raise OfflineError(f'model file {params.model_path} does not exist')
    pipeline = load_pipeline(params)
    if pipeline.info.metadata_warning:
        print(f'mono_depth_offline: warning: {pipeline.info.metadata_warning}', file=sys.stderr)
    return pipeline


class AtomicOutput:
    """OUTPUT written as ``<parent>/.<name>.*.partial/<name>`` and renamed into place by ``commit``.

    Raises (constructor):
        OfflineError: OUTPUT exists and ``overwrite`` is false, or OUTPUT is, or holds, the input or one of
            ``keep`` (model, calibration, ground truth): replacing it would delete what the run reads.
    """

    def __init__(self, output: Path, overwrite: bool, source: Path, keep: tuple = ()):
        if output.resolve() == source.resolve():
            raise OfflineError(f'output {output} is the input')
        for path in (source, *(Path(k) for k in keep if k)):
            if output.resolve() in path.resolve().parents:
                raise OfflineError(f'output {output} holds {path}, which this run reads; choose another output')
        if (output.exists() or output.is_symlink()) and not overwrite:
            raise OfflineError(f'output {output} exists; pass --overwrite to replace it')
        output.parent.mkdir(parents=True, exist_ok=True)
        self.output = output
        self._workdir = Path(tempfile.mkdtemp(prefix=f'.{output.name}.', suffix='.partial', dir=output.parent))
        #: where the caller writes; the same file system as OUTPUT, so the final rename is atomic
        self.path = self._workdir / output.name

    def commit(self) -> None:
        """Replace OUTPUT with the finished result (an old OUTPUT is removed only after the rename)."""
        old = self._workdir / (self.output.name + '.old')
        if self.output.exists() or self.output.is_symlink():
            os.replace(self.output, old)
        os.replace(self.path, self.output)
        self.abort()

    def abort(self) -> None:
        """Delete everything written so far (and a replaced old OUTPUT)."""
        shutil.rmtree(self._workdir, ignore_errors=True)


@dataclass
class Summary(SkippedFrames):
    """Counts for the end-of-run report; ``skipped`` maps a reason to the frame names it hit.

    Times in seconds: ``begin()`` marks the end of start-up (model load, bag index), so frames/s is the
    processing rate; ``model_seconds`` sums the pipeline's inference timings of the written frames.
    """

    frames_in: int = 0
    written: int = 0
    model_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.perf_counter)
    started: float | None = None
    finished: float | None = None

    def begin(self) -> None:
        self.started = time.perf_counter()

    def end(self) -> None:
        self.finished = time.perf_counter()

    def add(self, result) -> None:
        """Count a written frame (a pipeline FrameResult)."""
        self.written += 1
        self.model_seconds += result.timings.get('inference', 0.0) / 1e3

    @property
    def processing_seconds(self) -> float:
        """From ``begin()`` to ``end()`` (or now)."""
        return (self.finished or time.perf_counter()) - (self.started or self.created)

    def format(self) -> str:
        seconds, startup = self.processing_seconds, (self.started or self.created) - self.created
        lines = [f'frames in: {self.frames_in}, written: {self.written}, '
                 f'skipped: {sum(len(v) for v in self.skipped.values())}, '
                 f'{self.written / max(seconds, 1e-9):.2f} frames/s ({seconds:.1f} s after {startup:.1f} s '
                 f'start-up; {100 * self.model_seconds / max(seconds, 1e-9):.0f} % of it in the model)']
        lines += skipped_lines(self.skipped)
        lines += [f'  {line}' for note in self.notes for line in note.splitlines()]
        return '\n'.join(lines)
