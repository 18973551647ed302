"""``mono_depth_offline``: metric depth for recordings (rosbag2 sqlite3/MCAP, image folders), every frame.

The student runs through the node's own frame path (depth_kd_ros.frames: decode, resize, infer, focal rescale
z * f_camera / f_train, back-project, output messages), so offline results equal live ones. Sub-commands (README
"Offline processing"):

    mono_depth_offline bag INPUT OUTPUT --model PATH [--image-topic T] [--camera-info-topic T] [--copy-inputs]
    mono_depth_offline images INPUT_DIR OUTPUT_DIR --model PATH --camera-info FILE.yaml [--ply]
                                 [--gt-dir DIR --gt-scale S]

Outputs are written under a temporary name beside OUTPUT and renamed into place only when complete.
Exit status: 0 done, 2 bad input or arguments (one line on stderr, nothing written), 130 interrupted (Ctrl-C), 143
terminated (SIGTERM: systemd, `timeout`); interrupted or terminated, nothing is written either.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from depth_kd_ros.backends import BACKENDS, BackendError
from depth_kd_ros.bagio import BagError
from depth_kd_ros.camera_yaml import CameraFileError
from depth_kd_ros.image_codec import ImageDecodeError
from depth_kd_ros.image_files import ImageFolderError
from depth_kd_ros.model_file import ModelFileError
from depth_kd_ros.package_files import PACKAGE, share_file
from depth_kd_ros.params import ParameterError, load_params_file
from depth_kd_ros.pipeline import CameraInfoError, DepthPipeline, load_pipeline

PARAMS_FILE = Path('config') / 'mono_depth.yaml'
#: how many frame names the summary lists per skip reason
NAMES_SHOWN = 5


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
class Summary:
    """Counts for the end-of-run report; ``skipped`` maps a reason to the frame names it hit.

    Times in seconds: ``begin()`` marks the end of start-up (model load, bag index), so frames/s is the
    processing rate; ``model_seconds`` sums the pipeline's inference timings of the written frames.
    """

    frames_in: int = 0
    written: int = 0
    model_seconds: float = 0.0
    skipped: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.perf_counter)
    started: float | None = None
    finished: float | None = None

    def begin(self) -> None:
        self.started = time.perf_counter()

    def end(self) -> None:
        self.finished = time.perf_counter()

    def skip(self, reason: str, name: str) -> None:
        self.skipped.setdefault(reason, []).append(name)

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
        for reason, names in sorted(self.skipped.items()):
            more = f' and {len(names) - NAMES_SHOWN} more' if len(names) > NAMES_SHOWN else ''
            lines.append(f'  skipped {len(names)} ({reason}): {", ".join(names[:NAMES_SHOWN])}{more}')
        lines += [f'  {line}' for note in self.notes for line in note.splitlines()]
        return '\n'.join(lines)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised on the main thread as Ctrl-C's KeyboardInterrupt is, so that the same clean-up runs (the
    default action ends the process at once and leaves the temporary output behind)."""


def _terminate(signum: int, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not interrupt the clean-up
    raise Terminated


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='mono_depth_offline', description=__doc__.split('\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--model', help='model file (.onnx, or .pt2 for the torch backend); overrides '
                        'model_path of the params file')
    common.add_argument('--backend', choices=tuple(BACKENDS),
                        help='overrides backend of the params file')
    common.add_argument('--params-file', type=Path,
                        help='node parameters (default: config/mono_depth.yaml of the package)')
    common.add_argument('--overwrite', action='store_true', help='replace OUTPUT if it exists')
    common.add_argument('--quiet', action='store_true', help='no progress bar')
    bag = commands.add_parser('bag', parents=[common], help='depth, camera_info, points for every image of '
                              'a rosbag2 (sqlite3 or MCAP)')
    bag.add_argument('input', type=Path, metavar='INPUT', help='rosbag2 directory or .db3/.mcap file')
    bag.add_argument('output', type=Path, metavar='OUTPUT', help='new rosbag2 directory (same storage)')
    bag.add_argument('--image-topic', help='sensor_msgs/Image or CompressedImage topic (default: the only one)')
    bag.add_argument('--camera-info-topic', help='default: camera_info beside the image topic, else the only '
                     'CameraInfo topic')
    bag.add_argument('--copy-inputs', action='store_true', help='also copy the image and camera_info topics')
    images = commands.add_parser('images', parents=[common], help='depth PNGs (mm), previews, PLY and '
                                 'metrics for a folder of images')
    images.add_argument('input', type=Path, metavar='INPUT_DIR',
                        help='images of one camera (PNG, JPEG or another format OpenCV reads)')
    images.add_argument('output', type=Path, metavar='OUTPUT_DIR',
                        help='new directory: depth/ (uint16 mm), colored/, points/ (--ply), metrics.json')
    images.add_argument('--camera-info', type=Path, required=True, metavar='FILE.yaml',
                        help='ROS camera calibration file of the images')
    images.add_argument('--ply', action='store_true', help='also write a PLY point cloud per image')
    images.add_argument('--gt-dir', type=Path, help='ground-truth depth PNGs with the images\' stems')
    images.add_argument('--gt-scale', type=float, help='metres = GT value / S (1000 mm, 256 KITTI, 5000 TUM)')
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a sub-command. Returns the exit status (0 done, 2 bad input, 130 interrupted, 143 terminated)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == 'images' and (args.gt_dir is None) != (args.gt_scale is None):
        parser.error('--gt-dir and --gt-scale go together')
    if args.command == 'images' and args.gt_scale is not None and not args.gt_scale > 0:
        parser.error('--gt-scale must be positive')
    if args.command == 'bag':
        from depth_kd_ros.offline_bag import run_bag as run  # noqa: PLC0415 - it imports this module: a cycle
    else:
        from depth_kd_ros.offline_images import run_images as run  # noqa: PLC0415 - it imports this module: a cycle
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        summary = run(args)
    except USER_ERRORS as exc:
        print(f'mono_depth_offline: error: {exc}', file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, permissions: the environment, not a bug, so no traceback either
        print(f'mono_depth_offline: error: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        print(f'mono_depth_offline: {"terminated" if terminated else "interrupted"}; nothing written', file=sys.stderr)
        return 128 + signal.SIGTERM if terminated else 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(summary.format())
    return 0
