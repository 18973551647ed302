"""Robot recordings as training frames: rosbag2 (sqlite3, MCAP) and image folders, read by the runtime.

Paper: DisDepth (arXiv 2404.16386) distils on a labelled dataset; here the dataset is the robot's own
recording (training/README.md, "Train for your own camera"). Every call into the runtime (``depth_kd_ros``: bag
reading, topic choice, camera_info pairing, image/depth decoding, calibration files, image listing) is in
this module, so that a change of the runtime's frame path changes one file of the training side.

A recording is
    a rosbag2 (folder, .db3 or .mcap): ``data.image_topic`` (Image or CompressedImage), its camera_info
        and, with ``data.depth_topic``, depth registered to the colour camera (Image 16UC1 mm / 32FC1 m,
        or CompressedImage in image_transport's compressedDepth format);
    an image folder: FOLDER/<the only .yaml> (ROS calibration file), frames in FOLDER/rgb/ (else FOLDER),
        with ``data.depth_topic`` set: FOLDER/depth/<stem>.png (16-bit, metres = value / data.depth_png_scale).

Per colour image with header stamp t (folders: files in name order, no stamps):
    camera = the camera_info with the latest stamp <= t (as the node pairs them), intrinsics from P
    depth  = the depth message with the stamp nearest t, if |t_depth - t| <= data.depth_tolerance_s
    kept   = index % every_nth == 0  and  t - t_last_kept >= min_gap_s
    held out (never random: neighbouring frames are near-duplicates): bags, frames received in the last
        test_fraction of the bag's duration; folders, the last round(test_fraction * kept) frames (>= 1)
Only kept frames are decoded. Undecodable frames are skipped and named in the report; a missing topic,
a missing camera_info, depth of another size or encoding stop with a DatasetError (one line).
"""
from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from depth_kd_ros.camera.calibration import CameraFileError, load_camera_yaml
from depth_kd_ros.camera.model import CameraInfoError, CameraModel, camera_model
from depth_kd_ros.camera.pairing import bag_camera_infos, stamp_nanoseconds
from depth_kd_ros.frames import FrameSkipped, SkippedFrames, camera_frame, frame_name
from depth_kd_ros.io.bagio import (
    COMPRESSED_IMAGE,
    IMAGE_TYPES,
    BagError,
    camera_info_note,
    is_bag,
    open_bag,
    read_messages,
    select_camera_info_topic,
    select_image_topic,
    sibling_camera_info,
    topics_of_types,
)
from depth_kd_ros.io.image_codec import ImageDecodeError, decode_compressed_depth, decode_depth_image
from depth_kd_ros.io.image_files import ImageFolderError, list_images
from depth_kd_ros.params import NodeParams
from disdepth.data.splits import DatasetError, read_depth_png

#: a colour frame waits at most this long (in stamps of later frames) for its depth message
MAX_DEPTH_LAG_NS = 1_000_000_000
#: files up to this size are hashed whole; larger ones (bag storage) by HASH_BLOCKS blocks spread over them
WHOLE_FILE_HASH = 4 << 20
HASH_BLOCKS, HASH_BLOCK_SIZE = 16, 256 << 10
#: the node's frame size limit applies to training frames too
MAX_PIXELS = NodeParams().max_input_pixels


@dataclass
class Frame:
    """One kept colour frame of a recording, at its recorded size."""

    name: str  # '#<index> (stamp <sec>.<nanosec>)' for bags, the file name for folders
    stamp_ns: int | None  # header stamp; None in image folders
    rgb: np.ndarray  # uint8 [H,W,3]
    depth: np.ndarray | None  # float32 [H,W] metres, NaN = no measurement; None: no depth paired
    camera: CameraModel  # from camera_info P (K when P is unset), at the frame's size
    held_out: bool


@dataclass
class ReadReport(SkippedFrames):
    """What reading one recording kept and skipped (frame names per reason), for the run's summary."""

    kind: str = ''  # 'rosbag2' or 'image folder'
    topics: dict[str, str | None] = field(default_factory=dict)  # image, camera_info, depth as chosen
    images: int = 0  # colour frames in the recording
    kept: int = 0  # after every_nth / min_gap_s, before decoding
    without_depth: list[str] = field(default_factory=list)  # kept frames with no depth paired
    notes: list[str] = field(default_factory=list)


def read_recording(path: Path, cfg, report: ReadReport) -> Iterator[Frame]:
    """The kept frames of one recording (module docstring), decoded, in recording order.

    Args:
        path: a rosbag2 or an image folder; cfg: the ``data`` config section; report: filled while reading.
    Raises:
        DatasetError: missing path, unreadable bag, missing topic (the error lists the image topics there are),
            no camera_info, depth of another size or an unsupported encoding, a bad calibration file.
    """
    if not path.exists():
        raise DatasetError(f'recording {path}: no such file or directory')
    if path.is_dir() and not is_bag(path):
        yield from _read_folder(path, cfg, report)
        return
    try:
        yield from _read_bag(path, cfg, report)
    except BagError as exc:
        raise DatasetError(str(exc)) from exc


def _choose_topics(reader, path: Path, cfg) -> tuple[str, str, str, str | None]:
    """(image topic, its type, camera_info topic, depth topic) of a bag (data.* or the defaults)."""
    images = topics_of_types(reader, IMAGE_TYPES)
    listing = ', '.join(f'{t} ({m.rsplit("/", 1)[-1]})' for t, m in images.items()) or 'none'
    topic = cfg.image_topic
    if topic is None:  # the only colour topic: depth topics (the given one, compressedDepth ones) aside
        depth_base = (cfg.depth_topic or '').removesuffix('/compressedDepth')
        candidates = [t for t in images
                      if t not in (cfg.depth_topic, depth_base) and not t.endswith('/compressedDepth')]
        if len(candidates) != 1:
            raise DatasetError(f'{path} has {len(candidates)} colour image topics; choose one with data.image_topic: '
                               f'{listing}')
        topic = candidates[0]
    try:
        topic, msgtype = select_image_topic(reader, topic)
        info_topic = select_camera_info_topic(reader, topic, msgtype, cfg.camera_info_topic)
    except BagError as exc:
        raise DatasetError(f'{path}: {exc}'.replace('--image-topic', 'data.image_topic')) from exc
    if info_topic is None:
        raise DatasetError(f'{path} has no camera_info (sensor_msgs/CameraInfo) for {topic}: record '
                           f'{sibling_camera_info(topic, msgtype)} too (its P gives the model\'s focal length) or '
                           f'set data.camera_info_topic')
    if cfg.depth_topic == topic:
        raise DatasetError(f'{path}: data.depth_topic is the colour image topic {topic}; give the registered depth')
    if cfg.depth_topic is not None and cfg.depth_topic not in images:
        raise DatasetError(f'{path}: depth topic {cfg.depth_topic} is not an image topic of the bag; its image '
                           f'topics: {listing}')
    return topic, msgtype, info_topic, cfg.depth_topic


def _read_bag(path: Path, cfg, report: ReadReport) -> Iterator[Frame]:
    report.kind = 'rosbag2'
    with open_bag(path) as reader:
        yield from _BagFrames(path, reader, cfg, report)


class _BagFrames:
    """The kept colour messages of one open bag, paired with camera_info and depth, decoded (an iterable)."""

    def __init__(self, path: Path, reader, cfg, report: ReadReport):
        self.path, self.reader, self.cfg, self.report = path, reader, cfg, report
        self.topic, self.msgtype, info_topic, self.depth_topic = _choose_topics(reader, path, cfg)
        report.topics = {'image': self.topic, 'camera_info': info_topic, 'depth': self.depth_topic}
        if cfg.camera_info_topic is None and (note := camera_info_note(self.topic, self.msgtype, info_topic,
                                                                       'set data.camera_info_topic')):
            report.notes.append(note)
        self.infos = bag_camera_infos(reader, info_topic)
        if not self.infos:
            raise DatasetError(f'{path}: camera_info topic {info_topic} has no message')
        self.depth_type = topics_of_types(reader, IMAGE_TYPES).get(self.depth_topic)
        self.tolerance = round(cfg.depth_tolerance_s * 1e9)
        report.images = sum(c.msgcount for c in reader.connections if c.topic == self.topic)
        self.window: deque = deque()  # recent depth messages: (stamp, message)

    def __iter__(self) -> Iterator[Frame]:
        cfg, reader = self.cfg, self.reader
        # held out: received in the last test_fraction of the bag's duration
        split_time = reader.start_time + (1.0 - cfg.test_fraction) * (reader.end_time - reader.start_time)
        pending: deque = deque()  # kept colour frames waiting for their depth: (stamp, name, held_out, message)
        index, last_kept, newest = -1, None, None
        read = [self.topic, self.depth_topic] if self.depth_topic else [self.topic]
        for connection, timestamp, _, message in read_messages(reader, read):
            stamp = stamp_nanoseconds(message.header.stamp)
            if connection.topic == self.depth_topic:
                self.window.append((stamp, message))
            else:
                index += 1
                newest = stamp if newest is None else max(newest, stamp)
                if index % cfg.every_nth or (last_kept is not None and stamp - last_kept < cfg.min_gap_s * 1e9):
                    continue
                last_kept = stamp
                self.report.kept += 1
                pending.append((stamp, frame_name(index, stamp), timestamp >= split_time, message))
            # a colour frame's pairing is settled once a depth frame stamped after its window arrived
            # (depth stamps grow), or a colour frame a second later did (the depth stream has a gap)
            while pending and (not self.depth_topic or (self.window and self.window[-1][0] > pending[0][0]
                                                        + self.tolerance)
                               or newest > pending[0][0] + self.tolerance + MAX_DEPTH_LAG_NS):
                frame = self._frame(*pending.popleft())
                if frame is not None:
                    yield frame
            horizon = (pending[0][0] if pending else newest or 0) - self.tolerance
            while self.window and self.window[0][0] < horizon:
                self.window.popleft()
        for item in pending:
            frame = self._frame(*item)
            if frame is not None:
                yield frame

    def _frame(self, stamp: int, name: str, held_out: bool, message) -> Frame | None:
        """Decode one kept colour message with its camera_info and depth; None (and a report entry) if skipped."""
        try:  # the node's frame sequence, not rectified (training sees the frames as recorded)
            match = self.infos.match(stamp)
            frame = camera_frame(message, match.info if match else None, require_camera=True, max_pixels=MAX_PIXELS)
        except FrameSkipped as exc:
            self.report.skip(exc.reason, name)
            return None
        rgb, camera = frame.rgb, frame.camera
        depth = None
        if self.depth_topic is not None:
            nearest = min(self.window, key=lambda d: abs(d[0] - stamp), default=None)
            if nearest is not None and abs(nearest[0] - stamp) <= self.tolerance:
                depth = self._depth(nearest[1], name)
                if depth is not None and depth.shape != rgb.shape[:2]:
                    raise DatasetError(f'{self.path}: depth on {self.depth_topic} is {depth.shape[1]}x'
                                       f'{depth.shape[0]} but the colour image is {rgb.shape[1]}x{rgb.shape[0]} at '
                                       f'{name}; the depth must be registered to the colour camera (e.g. RealSense '
                                       'aligned_depth_to_color)')
            if depth is None:
                self.report.without_depth.append(name)
        return Frame(name, stamp, rgb, depth, camera, held_out)

    def _depth(self, message, name: str) -> np.ndarray | None:
        """float32 metres (NaN none), or None for a corrupt payload. Raises DatasetError for an unsupported one."""
        try:
            if self.depth_type == COMPRESSED_IMAGE:
                return decode_compressed_depth(message.format, message.data)
            return decode_depth_image(message.encoding, message.height, message.width, message.step, message.data,
                                      is_bigendian=bool(message.is_bigendian))
        except ImageDecodeError as exc:
            if exc.kind in ('unsupported_encoding', 'unsupported_format'):
                raise DatasetError(f'{self.path}: depth topic {self.depth_topic}: {exc}') from exc
            self.report.skip(f'undecodable depth ({exc.kind}), trained without it', name)
            return None


def _calibration_file(folder: Path) -> Path:
    files = sorted(p for p in folder.iterdir() if p.suffix in ('.yaml', '.yml') and p.is_file())
    if len(files) != 1:
        raise DatasetError(f'image folder {folder} needs exactly one ROS calibration file (.yaml) beside its '
                           f'images, found {len(files)}: {", ".join(p.name for p in files) or "none"}')
    return files[0]


def _read_folder(folder: Path, cfg, report: ReadReport) -> Iterator[Frame]:
    report.kind = 'image folder'
    calibration_file = _calibration_file(folder)
    frames_dir = folder / 'rgb' if (folder / 'rgb').is_dir() else folder
    depth_dir = folder / 'depth'
    try:
        calibration = load_camera_yaml(calibration_file)
        camera_model(calibration, calibration.width, calibration.height)  # usable, or the folder is refused
        files = list_images(frames_dir)
        depth_files = {}
        if cfg.depth_topic is not None:
            if not depth_dir.is_dir():
                raise DatasetError(f'image folder {folder} has no depth/ folder of 16-bit PNGs, which '
                                   'data.depth_topic asks for (set data.depth_topic=null for teacher targets)')
            depth_files = {p.stem: p for p in list_images(depth_dir, ('.png',))}
    except (CameraFileError, CameraInfoError, ImageFolderError) as exc:
        raise DatasetError(f'image folder {folder}: {exc}') from exc
    report.topics = {'image': str(frames_dir), 'camera_info': str(calibration_file),
                     'depth': str(depth_dir) if cfg.depth_topic is not None else None}
    if cfg.min_gap_s > 0:
        report.notes.append('image folders have no stamps: data.min_gap_s does not apply (data.every_nth does)')
    report.images = len(files)
    kept = files[::cfg.every_nth]
    report.kept = len(kept)
    held_out = max(1, round(cfg.test_fraction * len(kept))) if len(kept) > 1 else 0
    for number, path in enumerate(kept):
        try:
            frame = camera_frame(path, calibration, require_camera=True, max_pixels=MAX_PIXELS)
        except FrameSkipped as exc:
            if exc.kind == 'camera_size_mismatch':
                raise DatasetError(f'{path}: {exc} ({calibration_file.name}); one folder holds one camera\'s '
                                   'frames') from exc
            report.skip(exc.reason, path.name)
            continue
        rgb, camera = frame.rgb, frame.camera
        depth = None
        if path.stem in depth_files:
            depth = read_depth_png(depth_files[path.stem], cfg.depth_png_scale)
            if depth.shape != rgb.shape[:2]:
                raise DatasetError(f'{depth_files[path.stem]} is {depth.shape[1]}x{depth.shape[0]}, its image '
                                   f'{rgb.shape[1]}x{rgb.shape[0]}; depth must be registered to the colour camera')
            depth[depth <= 0] = np.nan
        elif cfg.depth_topic is not None:
            report.without_depth.append(path.name)
        yield Frame(path.name, None, rgb, depth, camera, number >= len(kept) - held_out)


@lru_cache(maxsize=4096)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file's content: whole up to WHOLE_FILE_HASH bytes, else HASH_BLOCKS evenly spread blocks
    (first and last included); ``size`` and ``mtime_ns`` only key the in-process memo."""
    digest = hashlib.sha256(str(size).encode())
    with open(path, 'rb') as stream:
        if size <= WHOLE_FILE_HASH:
            digest.update(stream.read())
        else:
            for block in range(HASH_BLOCKS):
                stream.seek((size - HASH_BLOCK_SIZE) * block // (HASH_BLOCKS - 1))
                digest.update(stream.read(HASH_BLOCK_SIZE))
    return digest.hexdigest()


def fingerprint(path: Path) -> str:
    """A content hash of a recording: every file's relative name and content digest (``_file_digest``).

    Content, not times: a copied recording keeps its fingerprint; a re-recorded, cut or appended one does not.
    Raises DatasetError if the path does not exist.
    """
    if not path.exists():
        raise DatasetError(f'recording {path}: no such file or directory')
    files = [path] if path.is_file() else sorted(p for p in path.rglob('*') if p.is_file())
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        digest.update(f'{file.relative_to(path) if file != path else file.name}\0'.encode())
        digest.update(_file_digest(str(file.resolve()), stat.st_size, stat.st_mtime_ns).encode())
    return digest.hexdigest()


def focal_at(camera: tuple, width: int, height: int) -> float:
    """The node's f_cam (px) of a camera (fx, fy, cx, cy, width, height) resized to ``width`` x ``height``."""
    return CameraModel(*camera).focal_at(width, height)
