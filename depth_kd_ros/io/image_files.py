"""Image files on disk: which files of a folder are images, and one file read as the RGB a camera delivers.

The one lister for every folder the runtime reads (``mono_depth_offline images`` and its ground truth, INT8
calibration, scripts/verify_trt.py): the files directly inside the folder whose suffix (any case) is one of
``IMAGE_SUFFIXES``, the formats OpenCV decodes, sorted by name, so every run sees them in the same order.
Reading goes through the node's decoder (image_codec.decode_compressed): a truncated PNG or JPEG is refused
instead of decoding to grey.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from depth_kd_ros.io.image_codec import decode_compressed

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.ppm', '.pgm', '.tif', '.tiff', '.webp')


class ImageFolderError(ValueError):
    """The folder is missing, not a folder, or holds no image."""


def list_images(folder: str | Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[Path]:
    """Image files directly inside ``folder`` (subfolders ignored), sorted by name.

    Args:
        suffixes: lower-case suffixes that make a file an image (default: every format OpenCV decodes).
    Raises:
        ImageFolderError: ``folder`` is not a directory or holds no file with one of ``suffixes``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageFolderError(f'folder {folder} does not exist or is not a directory')
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise ImageFolderError(f'folder {folder} holds no images (looked for {", ".join(suffixes)})')
    return files


def read_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """An image file as uint8 [H,W,3] RGB.

    Raises:
        OSError: the file cannot be read.
        ImageDecodeError: truncated or undecodable ('corrupt_compressed'), or over ``max_pixels``.
    """
    return decode_compressed(Path(path).read_bytes(), max_pixels=max_pixels)
