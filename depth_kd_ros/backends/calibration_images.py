"""Calibration batches for TensorRT INT8 from a folder of images (pure numpy + OpenCV, no tensorrt).

Entropy calibration (TensorRT's IInt8EntropyCalibrator2) picks per-tensor int8 ranges that minimise
the KL divergence between fp32 and quantised activation histograms, so it must see inputs exactly as
the deployed model does: the model contract's input (docs/design.md section 3), RGB in 0..1, float32 NCHW,
resized to the model's input size.

    batch = stack([resize(rgb(imread(f)), (W, H)) / 255 for f in files[i*B:(i+1)*B]])   # [B,3,H,W]

The engine's input shape is static, so every batch has exactly B images: the last partial batch is
padded by repeating its final image (a duplicate adds no new range information).
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from depth_kd_ros.io.image_codec import ImageDecodeError
from depth_kd_ros.io.image_files import ImageFolderError, list_images, read_image


class CalibrationDataError(ValueError):
    """The calibration folder is missing, has no images, or an image cannot be decoded."""


def calibration_files(folder: str | Path) -> list[Path]:
    """The images of a calibration folder (``image_files.list_images``: sorted by name, so calibration is
    deterministic).

    Raises:
        CalibrationDataError: ``folder`` is not a directory or holds no image.
    """
    try:
        return list_images(folder)
    except ImageFolderError as exc:
        raise CalibrationDataError(f'calibration {exc}') from exc


def load_image(path: str | Path, height: int, width: int) -> np.ndarray:
    """Read one image as the model's input: float32 [3,H,W], RGB in 0..1, resized to (height, width).

    Raises:
        CalibrationDataError: ``path`` cannot be read, is truncated, or OpenCV cannot decode it (a truncated
            JPEG that OpenCV 4.5 would decode to grey must not set the int8 ranges).
    """
    try:
        rgb = read_image(path)
    except (OSError, ImageDecodeError) as exc:
        raise CalibrationDataError(f'cannot decode calibration image {path}: {exc}') from exc
    if rgb.shape[:2] != (height, width):
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)


class CalibrationBatches:
    """Iterable of float32 [B,3,H,W] batches from ``folder`` (images in name order).

    Args:
        folder: directory of images (png/jpg/...); subfolders are ignored.
        height, width: the model's input size in pixels.
        batch_size: images per batch B (1 for the exported static [1,3,H,W] models).
        max_images: use only the first N images (None = all).
    Raises:
        CalibrationDataError: see ``calibration_files``; ValueError for a non-positive size.
    """

    def __init__(self, folder: str | Path, height: int, width: int, batch_size: int = 1,
                 max_images: int | None = None):
        if min(height, width, batch_size) < 1:
            raise ValueError(f'height, width and batch_size must be >= 1, got {height}, {width}, {batch_size}')
        self.files = calibration_files(folder)[:max_images]
        self.height, self.width, self.batch_size = height, width, batch_size

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.batch_size, 3, self.height, self.width)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * 4

    def __len__(self) -> int:
        return (len(self.files) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[np.ndarray]:
        for start in range(0, len(self.files), self.batch_size):
            chunk = self.files[start:start + self.batch_size]
            chunk = chunk + [chunk[-1]] * (self.batch_size - len(chunk))
            yield np.stack([load_image(f, self.height, self.width) for f in chunk])
