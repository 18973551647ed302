"""The ``recordings`` dataset: the robot's own recordings, decoded once into a cache, split by time.

Paper: DisDepth (arXiv 2404.16386) section 3.4 objective on the robot's frames: SILog against the
recording's depth sensor (ground truth) when ``data.depth_topic`` is set, else against the frozen
teacher's metric depth on the same frames (pseudo-labels), plus the KD terms as usual. Frames come from
``disdepth.data.recordings`` (the module docstring says how they are chosen, paired and held out).

Cache (``data.cache_dir``, default ``~/.cache/depth_kd_ros/recordings``), one folder per recording and key:

    key = sha256{cache version, the recording's content fingerprint, data.image_topic, camera_info_topic,
          depth_topic, depth_tolerance_s, every_nth, min_gap_s, test_fraction, depth_png_scale,
          (height, width), (eval_height, eval_width)}
    <key>/index.json               the key, the topics chosen, per split the frames (name, stamp, camera,
                                   K at the cached size, has_depth) and the reading report
    <key>/<split>_rgb.u8           uint8 [N,H,W,3]: whole frames resized to the split's size (train
                                   data.height x data.width, test data.eval_height x eval_width), K kept
                                   exact (transforms.resize, as the KITTI path does)
    <key>/<split>_depth.f32        float32 [N,H,W] metres, 0 = none (nearest resize), with a depth topic
    <key>/labels-<teacher>-<split>.f32   the teacher's depth on the cached frames (pseudo-labels; its key
                                   is the teacher's kind, path and weights' fingerprint)

Only the first build reads the recording; later epochs and runs read memory-mapped arrays. A build is
written under a temporary name and renamed, under a file lock, so concurrent ranks and runs build once;
a changed recording has another key (its old folder stays until deleted).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from depth_kd_ros.frames import skipped_lines
from disdepth.data.recordings import ReadReport, fingerprint, focal_at, read_recording
from disdepth.data.splits import DatasetError
from disdepth.data.transforms import Sample, augment, item_rng, resize, to_item

CACHE_VERSION = 1
SPLITS = ('train', 'test')
LABEL_BATCH = 8
_REPORTED: set = set()


def cache_root(cfg) -> Path:
    """``data.cache_dir``, else ``$XDG_CACHE_HOME`` (or ~/.cache) / depth_kd_ros / recordings."""
    if cfg.cache_dir:
        return Path(cfg.cache_dir)
    return Path(os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache') / 'depth_kd_ros' / 'recordings'


def check_settings(cfg) -> None:
    """Raise DatasetError for data.* settings of the recordings dataset that cannot work."""
    if not cfg.recordings:
        raise DatasetError('data.recordings is empty: list rosbag2 recordings (folder, .db3, .mcap) or image folders')
    problems = [f'{name}={value!r} must be {rule}' for name, value, ok, rule in (
        ('data.every_nth', cfg.every_nth, cfg.every_nth >= 1, '>= 1'),
        ('data.min_gap_s', cfg.min_gap_s, cfg.min_gap_s >= 0, '>= 0'),
        ('data.test_fraction', cfg.test_fraction, 0 < cfg.test_fraction < 1, 'in (0, 1)'),
        ('data.depth_tolerance_s', cfg.depth_tolerance_s, cfg.depth_tolerance_s >= 0, '>= 0'),
        ('data.depth_png_scale', cfg.depth_png_scale, cfg.depth_png_scale > 0, '> 0')) if not ok]
    if problems:
        raise DatasetError(problems[0])


def recording_key(path: Path, cfg) -> dict:
    """Everything the cached frames of ``path`` depend on (module docstring). Raises DatasetError."""
    return {'version': CACHE_VERSION, 'content': fingerprint(path), 'image_topic': cfg.image_topic,
            'camera_info_topic': cfg.camera_info_topic, 'depth_topic': cfg.depth_topic,
            'depth_tolerance_s': cfg.depth_tolerance_s, 'every_nth': cfg.every_nth, 'min_gap_s': cfg.min_gap_s,
            'test_fraction': cfg.test_fraction, 'depth_png_scale': cfg.depth_png_scale,
            'train_size': [cfg.height, cfg.width], 'test_size': [cfg.eval_height, cfg.eval_width]}


def data_identity(cfg) -> dict:
    """``{recording: its cache key}`` of every recording, for the checkpoint; refuses a resume on other data."""
    check_settings(cfg)
    return {str(path): recording_key(Path(path), cfg) for path in cfg.recordings}


def check_same_data(started: dict | None, now: dict) -> None:
    """Raise DatasetError naming the recording and what changed when ``now`` differs from ``started``."""
    if started is None or started == now:
        return
    for path in sorted(set(started) | set(now)):
        if path not in now or path not in started:
            change = 'added to data.recordings' if path in now else 'removed from data.recordings'
        else:
            fields = [k for k in sorted(set(started[path]) | set(now[path]))
                      if started[path].get(k) != now[path].get(k)]
            if not fields:
                continue
            change = ('its content changed (fingerprint '
                      f'{started[path]["content"][:12]} -> {now[path]["content"][:12]})' if 'content' in fields
                      else 'data.' + ', data.'.join(fields) + ' changed')
        raise DatasetError(f'--resume refused: recording {path} {change} since this run started; start a new run '
                           '(another output_dir) or restore the recording')


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _say(text: str) -> None:
    """Print on rank 0 only (every rank builds the datasets under torchrun)."""
    if os.environ.get('RANK', '0') == '0':
        print(f'recordings: {text}', flush=True)


@contextmanager
def _locked(path: Path):
    """An exclusive lock on ``path`` (created) for the duration: one builder per cache folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'a') as stream:
        fcntl.flock(stream, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(stream, fcntl.LOCK_UN)


def _summary(path: str, report: dict, counts: dict) -> str:
    lines = [f'{path} ({report["kind"]}): {report["kept"]} of {report["images"]} frames kept, '
             f'{counts["train"]} train / {counts["test"]} held out'
             + (f', {len(report["without_depth"])} without depth' if report['topics'].get('depth') else '')]
    return '\n'.join(lines + skipped_lines(report['skipped']) + [f'  {note}' for note in report['notes']])


class CachedRecording:
    """The cache folder of one recording: its index and memory-mapped arrays (opened lazily per process)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.index = json.loads((folder / 'index.json').read_text())
        self._arrays: dict = {}

    def __getstate__(self):  # DataLoader workers open their own maps
        return {**self.__dict__, '_arrays': {}}

    def frames(self, split: str) -> list[dict]:
        return self.index['frames'][split]

    def array(self, name: str, split: str, channels: int = 0, dtype=np.uint8) -> np.ndarray:
        """``<folder>/<name>`` as [N,H,W(,channels)] of the split's size, memory-mapped read-only."""
        key = (name, split)
        if key not in self._arrays:
            height, width = self.index['sizes'][split]
            shape = (len(self.frames(split)), height, width) + ((channels,) if channels else ())
            self._arrays[key] = np.memmap(self.folder / name, dtype=dtype, mode='r', shape=shape) \
                if shape[0] else np.zeros(shape, dtype)
        return self._arrays[key]


def _build(path: Path, cfg, key: dict, folder: Path) -> None:
    """Read ``path`` once and write its cache folder (module docstring) under a temporary name."""
    sizes = {'train': (cfg.height, cfg.width), 'test': (cfg.eval_height, cfg.eval_width)}
    partial = folder.with_name(f'.{folder.name}.{os.getpid()}.partial')
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    report, frames = ReadReport(), {split: [] for split in SPLITS}
    try:
        with_depth = cfg.depth_topic is not None
        streams = {(split, kind): open(partial / f'{split}_{kind}', 'wb') for split in SPLITS
                   for kind in (('rgb.u8', 'depth.f32') if with_depth else ('rgb.u8',))}
        try:
            for frame in read_recording(path, cfg, report):
                split = 'test' if frame.held_out else 'train'
                depth = np.zeros(frame.rgb.shape[:2], np.float32) if frame.depth is None \
                    else np.nan_to_num(frame.depth, nan=0.0, posinf=0.0, neginf=0.0)
                sample = resize(Sample(frame.rgb, depth, frame.camera.K), *sizes[split])
                streams[split, 'rgb.u8'].write(np.ascontiguousarray(sample.image, np.uint8).tobytes())
                if with_depth:
                    streams[split, 'depth.f32'].write(sample.depth.astype(np.float32).tobytes())
                c = frame.camera
                frames[split].append({'name': frame.name, 'stamp_ns': frame.stamp_ns, 'K': sample.K.tolist(),
                                      'camera': [c.fx, c.fy, c.cx, c.cy, c.width, c.height],
                                      'has_depth': frame.depth is not None})
        finally:
            for stream in streams.values():
                stream.close()
        index = {'key': key, 'recording': str(path), 'sizes': sizes, 'frames': frames, 'report': asdict(report)}
        (partial / 'index.json').write_text(json.dumps(index, indent=1))
        os.replace(partial, folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def open_recording(path: Path, cfg) -> CachedRecording:
    """The cached frames of one recording, built on the first call (a cache miss reads the recording)."""
    key = recording_key(path, cfg)
    folder = cache_root(cfg) / _digest(key)[:32]
    if not (folder / 'index.json').is_file():
        with _locked(folder.with_name(folder.name + '.lock')):
            if not (folder / 'index.json').is_file():  # another rank or run may have built it meanwhile
                _say(f'decoding {path} into {folder} (once; later runs read the cache)')
                _build(path, cfg, key, folder)
    cached = CachedRecording(folder)
    if folder not in _REPORTED:  # once per process, though the train and test datasets both open it
        _REPORTED.add(folder)
        _say(_summary(str(path), cached.index['report'], {split: len(cached.frames(split)) for split in SPLITS}))
    return cached


def teacher_key(teacher_cfg) -> str:
    """What the teacher's labels depend on: kind, path (and the fingerprint of a local path), random_init."""
    local = teacher_cfg.path and Path(teacher_cfg.path).exists()
    return _digest({'kind': teacher_cfg.kind, 'path': teacher_cfg.path, 'random_init': teacher_cfg.random_init,
                    'weights': fingerprint(Path(teacher_cfg.path)) if local else None})[:16]


def write_labels(labeller, images: np.ndarray, path: Path) -> None:
    """``labeller.depth`` of ``images`` (uint8 [N,H,W,3]) to ``path``: float32 [N,H,W] metres, 0 = invalid.

    Batch by batch, under a temporary name renamed when whole, so a killed run leaves no partial labels.
    """
    partial = path.with_name(f'.{path.name}.{os.getpid()}.partial')
    with open(partial, 'wb') as stream:
        for start in range(0, len(images), LABEL_BATCH):
            batch = np.array(images[start:start + LABEL_BATCH])  # a writable copy of the map
            stream.write(labeller.depth(batch).astype(np.float32).tobytes())
    os.replace(partial, path)


def teacher_labels(labeller, cached: CachedRecording, split: str) -> np.ndarray:
    """The pseudo-labels of the split's cached frames, float32 [N,H,W] metres (0 = invalid), memory-mapped.

    Computed on the first call for this teacher (``labeller.key``), under a file lock so concurrent ranks and
    runs compute them once; later calls read the file.
    """
    path = cached.folder / f'labels-{labeller.key}-{split}.f32'
    if not path.is_file():
        with _locked(path.with_name(path.name + '.lock')):
            if not path.is_file():
                _say(f'teacher depth (pseudo-labels) for {len(cached.frames(split))} {split} frames of '
                     f'{cached.index["recording"]}')
                write_labels(labeller, cached.array(f'{split}_rgb.u8', split, 3), path)
    return cached.array(path.name, split, dtype=np.float32)


class RecordingsDataset(Dataset):
    """Items as ``disdepth.data.build_dataset`` documents, from the cache of every recording of the config.

    train: data.height x data.width, flip/rotation/photometric augmentation when data.augment;
    test: the held-out frames at data.eval_height x eval_width. With a depth topic, frames without depth are
    left out (and named: ``without_ground_truth``, which evaluate.py reports); without one, the depth is the
    ``labeller``'s: a frozen metric teacher (``disdepth.distill.labels.LabelTeacher``) with ``key`` (what its
    labels depend on), ``reference`` (its name for the metrics) and ``depth(uint8 [N,H,W,3]) -> float32 [N,H,W]
    metres``.
    Raises:
        DatasetError: bad settings or recordings (see ``disdepth.data.recordings``), nothing left after
            selection, no depth paired at all, no depth topic and no labeller.
    """

    def __init__(self, cfg, split: str, labeller=None):
        check_settings(cfg)
        self.cfg, self.split, self.train = cfg, split, split == 'train'
        self.ground_truth = cfg.depth_topic is not None
        if not self.ground_truth and labeller is None:
            raise DatasetError('data.depth_topic is null, so the teacher gives the targets; pass its labeller '
                               '(disdepth.build.build_labeller)')
        self.recordings = [open_recording(Path(path), cfg) for path in cfg.recordings]
        self.items, self.without_ground_truth, self._targets = [], [], []
        for number, cached in enumerate(self.recordings):
            frames = cached.frames(split)
            self._targets.append(cached.array(f'{split}_depth.f32', split, dtype=np.float32) if self.ground_truth
                                 else teacher_labels(labeller, cached, split))
            for row, frame in enumerate(frames):
                if self.ground_truth and not frame['has_depth']:
                    self.without_ground_truth.append(self._name(cached, frame))
                else:
                    self.items.append((number, row))
        self.reference = (f'depth topic {cfg.depth_topic}' if self.ground_truth
                          else f'{labeller.reference} (agreement with the teacher, not accuracy)')
        if not self.items:
            per = '; '.join(f'{p}: {len(r.frames(split))} {split} frames' for p, r in zip(cfg.recordings,
                                                                                       self.recordings, strict=True))
            why = (f' ({len(self.without_ground_truth)} without depth within data.depth_tolerance_s='
                   f'{cfg.depth_tolerance_s} s on {cfg.depth_topic})' if self.without_ground_truth else '')
            raise DatasetError(f'nothing left for {"training" if self.train else "evaluation"} after selection'
                               f'{why}: {per} (data.every_nth={cfg.every_nth}, data.min_gap_s={cfg.min_gap_s}, '
                               f'data.test_fraction={cfg.test_fraction})')

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        number, row = self.items[index]
        cached = self.recordings[number]
        frame = cached.frames(self.split)[row]
        image = cached.array(f'{self.split}_rgb.u8', self.split, 3)[row].astype(np.float32) / 255.0
        s = Sample(image, np.array(self._targets[number][row], np.float32), np.array(frame['K']))
        if self.train and self.cfg.augment:
            s = augment(item_rng(), s, max_rotation=1.0, brightness=(0.9, 1.1))
        return to_item(s, min_depth=self.cfg.min_depth, max_depth=self.cfg.max_depth, name=self._name(cached, frame))

    @staticmethod
    def _name(cached: CachedRecording, frame: dict) -> str:
        return f'{Path(cached.index["recording"]).name}:{frame["name"]}'

    @property
    def evaluation_info(self) -> dict:
        """What evaluate.py's metrics compare against, for metrics.json: the depth topic or the teacher."""
        return {'reference': 'depth_topic' if self.ground_truth else 'teacher', 'reference_source': self.reference}

    def focal_length(self, width: int, height: int) -> float:
        """The frames' focal length (px) at ``width`` x ``height`` as the node computes it; the median over
        the frames when several cameras were recorded."""
        focals = [focal_at(tuple(r.frames(self.split)[row]['camera']), width, height)
                  for r, row in ((self.recordings[n], row) for n, row in self.items)]
        return float(np.median(focals))
