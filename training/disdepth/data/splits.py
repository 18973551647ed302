"""Split files and up-front validation of datasets on disk.

Format (BTS/AdaBins split files, e.g. ``eigen_train_files_with_gt.txt``), one sample per line:

    <rgb path relative to data_root> <depth path relative to gt_root | None> <focal length in pixels>

Validation runs before training (arXiv 2404.16386 section 4.1 protocols need every listed frame):
roots exist, every listed file exists, depth PNGs are 16-bit single-channel with the RGB image's size
(read from the PNG/JPEG headers only, in a thread pool, so a 23k-frame split takes seconds). Any
problem raises ``DatasetError`` naming the file and what was expected; nothing is skipped silently.
"""
from __future__ import annotations

import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np


class DatasetError(ValueError):
    """A dataset root, split file or listed file is missing or not in the expected format."""


@dataclass(frozen=True)
class SplitEntry:
    rgb: str
    depth: Optional[str]  # None: no ground truth for this frame
    focal: float  # pixels
    line: int  # 1-based line number in the split file


def read_split(path) -> list[SplitEntry]:
    """Parse a split file.

    Raises:
        DatasetError: a missing or empty file, or a malformed line (named as file:line).
    """
    if path is None:
        raise DatasetError('no split file given (set data.train_split / data.test_split)')
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f'split file not found: {path}')
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3:
            raise DatasetError(f'{path}:{number}: expected "rgb_path depth_path focal", got {line!r}')
        try:
            focal = float(fields[2])
        except ValueError:
            raise DatasetError(f'{path}:{number}: focal {fields[2]!r} is not a number') from None
        if focal <= 0:
            raise DatasetError(f'{path}:{number}: focal must be positive, got {focal}')
        depth = None if fields[1] == 'None' else fields[1].lstrip('/')
        entries.append(SplitEntry(fields[0].lstrip('/'), depth, focal, number))
    if not entries:
        raise DatasetError(f'split file {path} lists no samples (expected "rgb_path depth_path focal" lines)')
    return entries


def require_dir(path, what: str) -> Path:
    """Return ``path`` as a Path; DatasetError if it is None or not a directory."""
    if path is None:
        raise DatasetError(f'{what} is not set')
    if not Path(path).is_dir():
        raise DatasetError(f'{what} not found: {path} (expected a directory)')
    return Path(path)


def image_header(path: Path) -> tuple[int, int, int, int]:
    """(width, height, bit depth, channels) from a PNG IHDR or JPEG SOF header.

    Raises:
        DatasetError: neither PNG nor JPEG, or a truncated header.
    """
    with open(path, 'rb') as f:
        head = f.read(26)
        if head[:8] == b'\x89PNG\r\n\x1a\n':
            width, height, bits, colour = struct.unpack('>IIBB', head[16:26])
            return width, height, bits, {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour, 0)
        if head[:2] == b'\xff\xd8':
            f.seek(2)
            while True:
                marker, size = struct.unpack('>HH', f.read(4))
                if 0xFFC0 <= marker <= 0xFFCF and marker not in (0xFFC4, 0xFFC8, 0xFFCC):
                    bits, height, width, channels = struct.unpack('>BHHB', f.read(6))
                    return width, height, bits, channels
                f.seek(size - 2, 1)
    raise DatasetError(f'{path}: not a PNG or JPEG file')


def _check(rgb: Path, depth: Optional[Path], size: Optional[tuple[int, int]]) -> Optional[str]:
    """One sample's problem as text, or None."""
    for path in (rgb, depth):
        if path is not None and not path.is_file():
            return f'missing file {path}'
    try:
        w, h, _, _ = image_header(rgb)
        if size is not None and (h < size[0] or w < size[1]):
            return f'{rgb}: image is {h}x{w}, expected at least {size[0]}x{size[1]}'
        if depth is not None:
            dw, dh, bits, channels = image_header(depth)
            if not str(depth).endswith('.png') or bits != 16 or channels != 1:
                return f'{depth}: expected a 16-bit single-channel PNG, got {bits}-bit with {channels} channel(s)'
            if (dh, dw) != (h, w):
                return f'{depth}: depth is {dh}x{dw}, expected the RGB size {h}x{w} of {rgb}'
    except (DatasetError, OSError, struct.error) as err:
        return f'{rgb}: unreadable header ({err})'
    return None


def validate(entries: list[SplitEntry], data_root: Path, gt_root: Path, split_path, *,
             min_size: Optional[tuple[int, int]] = None, workers: int = 16) -> None:
    """Check every entry's files (existence, headers) in parallel; raise DatasetError listing problems.

    ``min_size``: (height, width) every RGB image must have at least, e.g. the KB crop for KITTI.
    """
    def job(e: SplitEntry):
        return _check(data_root / e.rgb, None if e.depth is None else gt_root / e.depth, min_size)

    with ThreadPoolExecutor(workers) as pool:
        problems = [(e, p) for e, p in zip(entries, pool.map(job, entries), strict=True) if p is not None]
    if problems:
        shown = '\n  '.join(f'{split_path}:{e.line}: {p}' for e, p in problems[:5])
        more = f'\n  ... and {len(problems) - 5} more' if len(problems) > 5 else ''
        raise DatasetError(f'{len(problems)} of {len(entries)} samples are invalid:\n  {shown}{more}')


def read_rgb(path: Path) -> np.ndarray:
    """RGB image float32 [H,W,3] in 0..1, as stored: an EXIF orientation is not applied, as it is not to the depth
    PNGs (read_depth_png) and the runtime's frames (depth_kd_ros.io.image_files).

    Raises:
        DatasetError: the file is unreadable.
    """
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None:
        raise DatasetError(f'cannot read image {path}')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def read_depth_png(path: Path, scale: float) -> np.ndarray:
    """Depth float32 [H,W] metres = uint16 value / ``scale`` (256 KITTI, 1000 NYU); 0 = invalid.

    Raises:
        DatasetError: the file is not a single-channel 16-bit PNG.
    """
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.dtype != np.uint16 or raw.ndim != 2:
        got = 'unreadable' if raw is None else f'{raw.dtype} with shape {raw.shape}'
        raise DatasetError(f'{path}: expected a single-channel uint16 depth PNG, got {got}')
    return raw.astype(np.float32) / scale
