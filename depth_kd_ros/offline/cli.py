"""``mono_depth_offline``: metric depth for recordings (rosbag2 sqlite3/MCAP, image folders), every frame.

The student runs through the node's own frame path (depth_kd_ros.frames: decode, resize, infer, focal rescale
z * f_camera / f_train, back-project, output messages), so offline results equal live ones.
Sub-commands (docs/offline.md; their speed in docs/results.md, "Offline processing"):

    mono_depth_offline bag INPUT OUTPUT --model PATH [--image-topic T] [--camera-info-topic T] [--copy-inputs]
    mono_depth_offline images INPUT_DIR OUTPUT_DIR --model PATH --camera-info FILE.yaml [--ply]
                                 [--gt-dir DIR --gt-scale S]

Outputs are written under a temporary name beside OUTPUT and renamed into place only when complete.
Exit status: 0 done, 2 bad input or arguments (one line on stderr, nothing written), 130 interrupted (Ctrl-C), 143
terminated (SIGTERM: systemd, `timeout`); interrupted or terminated, nothing is written either.
"""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from depth_kd_ros.backends import BACKENDS
from depth_kd_ros.offline.bag import run_bag
from depth_kd_ros.offline.images import run_images
from depth_kd_ros.offline.run import USER_ERRORS


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
    run = run_bag if args.command == 'bag' else run_images
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
