"""Image codec: sensor_msgs/Image and CompressedImage payloads to RGB arrays, without cv_bridge.

The runtime's input side (docs/design.md section 3), used through frames.py. cv_bridge has no PyPI wheel, so
the runtime decodes the raw bytes itself.

Row layout (sensor_msgs/Image): pixel (v, u), channel c is at byte ``v * step + u * channels + c``;
``step >= width * channels`` (rows may be padded) and ``len(data) >= height * step``.
"""
from __future__ import annotations

import cv2
import numpy as np

from depth_kd_ros.image_header import ImageHeaderError, check_complete, compressed_image_size

#: supported encodings -> (channels, OpenCV conversion to RGB or None when already RGB)
ENCODINGS: dict[str, tuple[int, int | None]] = {
    'rgb8': (3, None),
    'bgr8': (3, cv2.COLOR_BGR2RGB),
    'rgba8': (4, cv2.COLOR_RGBA2RGB),
    'bgra8': (4, cv2.COLOR_BGRA2RGB),
    'mono8': (1, cv2.COLOR_GRAY2RGB),
}


class ImageDecodeError(ValueError):
    """The image payload cannot be decoded; the message names the field that is wrong.

    ``kind`` is a short stable key for counting faults in diagnostics (e.g. 'unsupported_encoding').
    """

    def __init__(self, message: str, kind: str = 'decode_error'):
        super().__init__(message)
        self.kind = kind


def decode_image(encoding: str, height: int, width: int, step: int, data, *,
                 max_pixels: int | None = None) -> np.ndarray:
    """Decode a raw sensor_msgs/Image payload to RGB.

    Args:
        encoding: one of ``ENCODINGS`` (rgb8, bgr8, rgba8, bgra8, mono8).
        height, width: image size in pixels.
        step: bytes per row (>= width * channels; extra bytes are padding and ignored).
        data: the bytes (bytes, bytearray, array.array('B') from rclpy, or a uint8 numpy array from rosbags).
        max_pixels: reject images with more than this many pixels (None: no limit).
    Returns:
        uint8 [H,W,3] RGB, C-contiguous, never a view of ``data``.
    Raises:
        ImageDecodeError: unsupported encoding, zero or too large size, step too small, data too short.
    """
    if encoding not in ENCODINGS:
        raise ImageDecodeError(f'unsupported encoding {encoding!r}; supported: {sorted(ENCODINGS)}',
                               'unsupported_encoding')
    channels, conversion = ENCODINGS[encoding]
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f'image has zero size: width={width} height={height}', 'zero_size')
    if max_pixels is not None and height * width > max_pixels:
        raise ImageDecodeError(f'image {width}x{height} has more than max_pixels={max_pixels} pixels',
                               'image_too_large')
    if step < width * channels:
        raise ImageDecodeError(f'step {step} < width*channels = {width}*{channels} for {encoding}',
                               'bad_step')
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1)
    if buffer.size < height * step:
        raise ImageDecodeError(f'data has {buffer.size} bytes, expected height*step = {height}*{step} '
                               f'= {height * step}', 'data_too_short')
    rows = buffer[:height * step].reshape(height, step)[:, :width * channels]
    pixels = rows.reshape(height, width, channels)
    if conversion is None:
        return pixels.copy()
    return cv2.cvtColor(pixels, conversion)


def decode_compressed(data, *, max_pixels: int | None = None) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage payload (JPEG, PNG, ... as OpenCV reads them) to RGB.

    Args:
        data: the compressed bytes (bytes, array.array('B') or uint8 numpy array).
        max_pixels: reject images with more than this many pixels (None: no limit). PNG and JPEG (what
            image_transport's compressed plugin sends) are checked on their header, before decoding
            allocates anything; other formats OpenCV reads are checked after decoding.
    Returns:
        uint8 [H,W,3] RGB.
    Raises:
        ImageDecodeError: empty, truncated (a PNG or JPEG without its end, image_header.check_complete: OpenCV
            4.5/4.6 decode such a JPEG to grey) or undecodable data (kind 'corrupt_compressed'), more than
            ``max_pixels`` pixels ('image_too_large').
    """
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1)
    if buffer.size == 0:
        raise ImageDecodeError('compressed image is empty', 'corrupt_compressed')
    if max_pixels is not None:
        _check_header_pixels(buffer, max_pixels)
    try:
        check_complete(buffer)
    except ImageHeaderError as exc:
        raise ImageDecodeError(f'compressed image ({buffer.size} bytes): {exc}', 'corrupt_compressed') from exc
    bgr = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageDecodeError(f'cannot decode compressed image ({buffer.size} bytes)', 'corrupt_compressed')
    if max_pixels is not None:  # formats without a header reader in image_header
        _check_pixels(bgr.shape[1], bgr.shape[0], max_pixels)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _check_header_pixels(buffer: np.ndarray, max_pixels: int) -> None:
    """Refuse a PNG or JPEG whose header gives more than ``max_pixels`` pixels, or a malformed header."""
    try:
        size = compressed_image_size(buffer)
    except ImageHeaderError as exc:
        raise ImageDecodeError(f'cannot read the compressed image\'s header: {exc}', 'corrupt_compressed') from exc
    if size is not None:
        _check_pixels(*size, max_pixels)


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageDecodeError(f'image {width}x{height} has more than max_pixels={max_pixels} pixels',
                               'image_too_large')
