"""Image codec: sensor_msgs/Image and CompressedImage payloads to RGB arrays (and depth images to
metres, for training on recordings), without cv_bridge.

The runtime's input side (docs/design.md section 3), used through frames.py. cv_bridge has no PyPI wheel, so
the runtime decodes the raw bytes itself, with the OpenCV conversions cv_bridge's ``cvtColor(msg, 'rgb8')`` uses
(vision_opencv cv_bridge.cpp, getConversionCodes and toCvCopyImpl):

    yuv422 (UYVY: U Y0 V Y1)        COLOR_YUV2RGB_UYVY   (BT.601, Y in 16..235)
    yuv422_yuy2 (YUYV: Y0 U Y1 V)   COLOR_YUV2RGB_YUY2
    bayer_rggb8 / bggr8 / gbrg8 / grbg8   COLOR_BayerBG2RGB / RG2RGB / GR2RGB / GB2RGB: OpenCV names a mosaic
                                    by the second row's second and third pixels, so ROS's RGGB is OpenCV's BG
    mono16, rgb16, bgr16, rgba16, bgra16    16 -> 8 bit as cv_bridge: v * 255 / 65535, rounded (= v / 257)

Row layout (sensor_msgs/Image): value c of pixel (v, u) starts at byte ``v * step + (u * channels + c) * bytes``;
``step >= width * channels * bytes`` (rows may be padded) and ``len(data) >= height * step``; 16-bit values are
big-endian when ``is_bigendian`` is set, as cv_bridge's matFromImage reads them.

CompressedImage (image_transport's compressed plugin): ``format`` is ``'<encoding>; <jpeg|png> compressed
[<target>]'``, e.g. ``'rgb8; jpeg compressed bgr8'``, ``'mono16; png compressed '``; older publishers send
``'jpeg'`` or ``'png'``. A PNG's bit depth is read from its header (image_header.png_sample_format), never
guessed by the decoder: OpenCV's IMREAD_COLOR keeps the high byte of 16-bit samples, so a 16UC1 depth of
2500 mm would come out as grey 9. What is decoded:

    8-bit JPEG/PNG                          as before (bayer_* formats are demosaiced as their raw encoding)
    16-bit PNG, format mono16/rgb16/...     scaled to 8 bit as cv_bridge scales the raw encoding
    16-bit colour PNG, no encoding named    the same (a depth image has one channel)
    refused ('unsupported_format', the format named): compressedDepth, non-colour encodings (16UC1, 32FC1,
    8UC3, ...: cv_bridge refuses to convert them to rgb8 either), a 16-bit PNG whose format names an 8-bit
    encoding, and a 16-bit grey PNG that names no encoding (most likely depth, not a camera image).
"""
from __future__ import annotations

import re
import struct
from typing import NamedTuple

import cv2
import numpy as np

from depth_kd_ros.io.depth_encoding import MILLIMETRES_PER_METRE
from depth_kd_ros.io.image_header import (
    PNG_GREY_COLOUR_TYPES,
    PNG_SIGNATURE,
    ImageHeaderError,
    check_complete,
    compressed_image_size,
    png_sample_format,
)


class Encoding(NamedTuple):
    """How one sensor_msgs/Image encoding is laid out and turned into RGB."""

    channels: int  # values per pixel (yuv422: 2, one chroma and one luma byte)
    value_bytes: int  # 1, or 2 for 16-bit values (scaled to 8 bit before the conversion)
    conversion: int | None  # OpenCV cvtColor code to RGB, None when the values already are RGB


#: supported raw encodings (sensor_msgs/image_encodings names)
ENCODINGS: dict[str, Encoding] = {
    'rgb8': Encoding(3, 1, None),
    'bgr8': Encoding(3, 1, cv2.COLOR_BGR2RGB),
    'rgba8': Encoding(4, 1, cv2.COLOR_RGBA2RGB),
    'bgra8': Encoding(4, 1, cv2.COLOR_BGRA2RGB),
    'mono8': Encoding(1, 1, cv2.COLOR_GRAY2RGB),
    'mono16': Encoding(1, 2, cv2.COLOR_GRAY2RGB),
    'rgb16': Encoding(3, 2, None),
    'bgr16': Encoding(3, 2, cv2.COLOR_BGR2RGB),
    'rgba16': Encoding(4, 2, cv2.COLOR_RGBA2RGB),
    'bgra16': Encoding(4, 2, cv2.COLOR_BGRA2RGB),
    'yuv422': Encoding(2, 1, cv2.COLOR_YUV2RGB_UYVY),
    'yuv422_yuy2': Encoding(2, 1, cv2.COLOR_YUV2RGB_YUY2),
    'bayer_rggb8': Encoding(1, 1, cv2.COLOR_BayerBG2RGB),
    'bayer_bggr8': Encoding(1, 1, cv2.COLOR_BayerRG2RGB),
    'bayer_gbrg8': Encoding(1, 1, cv2.COLOR_BayerGR2RGB),
    'bayer_grbg8': Encoding(1, 1, cv2.COLOR_BayerGB2RGB),
}
YUV422_ENCODINGS = ('yuv422', 'yuv422_yuy2')
#: sensor_msgs' generic encodings (8UC3, 16UC1, 32FC1, ...): numbers without a colour meaning
GENERIC_ENCODING = re.compile(r'(8|16|32|64)(U|S|F)C[1-4]')
#: 16-bit -> 8-bit factor of cv_bridge's toCvCopyImpl (convertTo with 255/65535, rounded)
SCALE_16_TO_8 = 255.0 / 65535.0


class ImageDecodeError(ValueError):
    """The image payload cannot be decoded; the message names the field that is wrong.

    ``kind`` is a short stable key for counting faults in diagnostics (e.g. 'unsupported_encoding').
    """

    def __init__(self, message: str, kind: str = 'decode_error'):
        super().__init__(message)
        self.kind = kind


def _as_bytes(data) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1)


def scale_16_to_8(values: np.ndarray) -> np.ndarray:
    """uint16 array (any byte order) -> uint8 of the same shape, round(v * 255 / 65535) as cv_bridge."""
    return cv2.convertScaleAbs(values.astype(np.uint16, copy=False), alpha=SCALE_16_TO_8)


def _to_rgb(pixels: np.ndarray, conversion: int | None, encoding: str) -> np.ndarray:
    if conversion is None:
        return pixels.copy()  # C-contiguous, and never a view of the message's buffer
    try:
        return cv2.cvtColor(pixels, conversion)
    except cv2.error as exc:  # a size a conversion cannot take (e.g. a Bayer mosaic on an old OpenCV)
        raise ImageDecodeError(f'OpenCV cannot convert a {pixels.shape[1]}x{pixels.shape[0]} {encoding} image: '
                               f'{str(exc).strip().splitlines()[-1]}', 'bad_size') from exc


def decode_image(encoding: str, height: int, width: int, step: int, data, *,
                 is_bigendian: bool = False, max_pixels: int | None = None) -> np.ndarray:
    """Decode a raw sensor_msgs/Image payload to RGB.

    Args:
        encoding: one of ``ENCODINGS``.
        height, width: image size in pixels (yuv422 needs an even width: two pixels share their chroma).
        step: bytes per row (>= width * channels * value bytes; extra bytes are padding and ignored).
        data: the bytes (bytes, bytearray, array.array('B') from rclpy, or a uint8 numpy array from rosbags).
        is_bigendian: the message's flag; the byte order of 16-bit values (ignored for 8-bit encodings).
        max_pixels: reject images with more than this many pixels (None: no limit).
    Returns:
        uint8 [H,W,3] RGB, C-contiguous, never a view of ``data``.
    Raises:
        ImageDecodeError: unsupported encoding, zero or too large size, an odd yuv422 width ('odd_width'),
            step too small, data too short.
    """
    if encoding not in ENCODINGS:
        raise ImageDecodeError(f'unsupported encoding {encoding!r}; supported: {sorted(ENCODINGS)}',
                               'unsupported_encoding')
    channels, value_bytes, conversion = ENCODINGS[encoding]
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f'image has zero size: width={width} height={height}', 'zero_size')
    if max_pixels is not None and height * width > max_pixels:
        raise ImageDecodeError(f'image {width}x{height} has more than max_pixels={max_pixels} pixels',
                               'image_too_large')
    if encoding in YUV422_ENCODINGS and width % 2:
        raise ImageDecodeError(f'{encoding} image has an odd width {width}; two pixels share one chroma pair',
                               'odd_width')
    row_bytes = width * channels * value_bytes
    if step < row_bytes:
        raise ImageDecodeError(f'step {step} < width*channels*bytes = {width}*{channels}*{value_bytes} for '
                               f'{encoding}', 'bad_step')
    buffer = _as_bytes(data)
    if buffer.size < height * step:
        raise ImageDecodeError(f'data has {buffer.size} bytes, expected height*step = {height}*{step} '
                               f'= {height * step}', 'data_too_short')
    rows = buffer[:height * step].reshape(height, step)[:, :row_bytes]
    if value_bytes == 2:
        # a dtype view needs contiguous rows on numpy < 1.23 (the robot's 1.21): copy padded rows first
        values = np.ascontiguousarray(rows).view('>u2' if is_bigendian else '<u2')
        rows = scale_16_to_8(values)
    return _to_rgb(rows.reshape(height, width, channels), conversion, encoding)


def format_encoding(message_format: str) -> str:
    """The encoding named by a CompressedImage ``format`` ('' when it names none, e.g. 'jpeg').

    Raises:
        ImageDecodeError ('unsupported_format'): compressedDepth, or a generic encoding (16UC1, 32FC1, 8UC3, ...)
            that is not a camera image.
    """
    if 'compresseddepth' in message_format.lower():
        raise ImageDecodeError(f'format {message_format!r}: compressedDepth carries a depth image, not a camera '
                               'image', 'unsupported_format')
    encoding = message_format.split(';', 1)[0].strip()
    if GENERIC_ENCODING.fullmatch(encoding):
        raise ImageDecodeError(f'format {message_format!r}: {encoding} is not a camera image (no colour meaning; '
                               'cv_bridge does not convert it to rgb8 either)', 'unsupported_format')
    return encoding if encoding in ENCODINGS else ''


def decode_compressed(data, *, message_format: str = '', max_pixels: int | None = None) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage payload (JPEG, PNG, ... as OpenCV reads them) to RGB.

    Args:
        data: the compressed bytes (bytes, array.array('B') or uint8 numpy array).
        message_format: the message's ``format`` (module docstring); '' for a file, whose encoding is unknown.
        max_pixels: reject images with more than this many pixels (None: no limit). PNG and JPEG (what
            image_transport's compressed plugin sends) are checked on their header, before decoding
            allocates anything; other formats OpenCV reads are checked after decoding.
    Returns:
        uint8 [H,W,3] RGB.
    Raises:
        ImageDecodeError: empty, truncated (a PNG or JPEG without its end, image_header.check_complete: OpenCV
            4.5/4.6 decode such a JPEG to grey) or undecodable data (kind 'corrupt_compressed'), more than
            ``max_pixels`` pixels ('image_too_large'), a format or bit depth that is not a camera image
            ('unsupported_format', module docstring).
    """
    buffer = _as_bytes(data)
    if buffer.size == 0:
        raise ImageDecodeError('compressed image is empty', 'corrupt_compressed')
    encoding = format_encoding(message_format)
    if max_pixels is not None:
        _check_header_pixels(buffer, max_pixels)
    try:
        check_complete(buffer)
        sixteen_bit_png = bytes(buffer[:8]) == PNG_SIGNATURE and png_sample_format(buffer)[0] == 16
    except ImageHeaderError as exc:
        raise ImageDecodeError(f'compressed image ({buffer.size} bytes): {exc}', 'corrupt_compressed') from exc
    if sixteen_bit_png:
        return _decode_png16(buffer, encoding, message_format)
    if encoding.startswith('bayer_'):
        mosaic = _imdecode(buffer, cv2.IMREAD_GRAYSCALE)
        return _to_rgb(mosaic, ENCODINGS[encoding].conversion, encoding)
    bgr = _imdecode(buffer, cv2.IMREAD_COLOR)
    if max_pixels is not None:  # formats without a header reader in image_header
        _check_pixels(bgr.shape[1], bgr.shape[0], max_pixels)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _imdecode(buffer: np.ndarray, flags: int) -> np.ndarray:
    image = cv2.imdecode(buffer, flags)
    if image is None:
        raise ImageDecodeError(f'cannot decode compressed image ({buffer.size} bytes)', 'corrupt_compressed')
    return image


def _decode_png16(buffer: np.ndarray, encoding: str, message_format: str) -> np.ndarray:
    """A 16-bit PNG as cv_bridge converts the 16-bit encoding it stands for (module docstring)."""
    colour_type = png_sample_format(buffer)[1]
    if encoding and ENCODINGS[encoding].value_bytes != 2:
        raise ImageDecodeError(f'format {message_format!r} names the 8-bit encoding {encoding}, but the PNG has '
                               '16-bit samples', 'unsupported_format')
    if not encoding and colour_type in PNG_GREY_COLOUR_TYPES:
        raise ImageDecodeError(f'a 16-bit grey PNG with format {message_format!r} is depth-like data (16UC1), not '
                               "a camera image; a mono16 camera sends the format 'mono16; png compressed'",
                               'unsupported_format')
    image = scale_16_to_8(_imdecode(buffer, cv2.IMREAD_UNCHANGED))  # BGR(A) order, as OpenCV wrote it
    if image.ndim == 2 or image.shape[2] <= 2:  # grey, or grey + alpha
        return cv2.cvtColor(image if image.ndim == 2 else image[..., 0], cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB if image.shape[2] == 3 else cv2.COLOR_BGRA2RGB)


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


#: depth_encoding.DEPTH_ENCODINGS (REP 118) -> (element type, units per metre): 16UC1 mm, 32FC1 m
DEPTH_LAYOUTS: dict[str, tuple[str, float]] = {'16UC1': ('u2', MILLIMETRES_PER_METRE), '32FC1': ('f4', 1.0)}
#: compressed_depth_image_transport's ConfigHeader before the PNG: int32 format, float32 depthParam[2]
COMPRESSED_DEPTH_HEADER = struct.Struct('<iff')


def _metres(values: np.ndarray, units_per_metre: float) -> np.ndarray:
    """float32 metres of raw depth values; 0 and non-finite (no measurement) become NaN (REP 118)."""
    depth = values.astype(np.float32) / np.float32(units_per_metre)
    depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return depth


def decode_depth_image(encoding: str, height: int, width: int, step: int, data, *,
                       is_bigendian: bool = False) -> np.ndarray:
    """Decode a depth sensor_msgs/Image payload to metres.

    Args:
        encoding: '16UC1' (millimetres) or '32FC1' (metres), as REP 118 and depth drivers use them.
        height, width, step, data: as ``decode_image``; ``is_bigendian`` the message's byte order.
    Returns:
        float32 [H,W] metres, NaN where there is no measurement (0, NaN or inf in the message).
    Raises:
        ImageDecodeError: unsupported encoding (kind 'unsupported_encoding'), zero size, step too small,
            data too short.
    """
    if encoding not in DEPTH_LAYOUTS:
        raise ImageDecodeError(f'unsupported depth encoding {encoding!r}; supported: {sorted(DEPTH_LAYOUTS)}',
                               'unsupported_encoding')
    kind, units = DEPTH_LAYOUTS[encoding]
    dtype = np.dtype(kind).newbyteorder('>' if is_bigendian else '<')
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f'depth image has zero size: width={width} height={height}', 'zero_size')
    if step < width * dtype.itemsize:
        raise ImageDecodeError(f'step {step} < width*{dtype.itemsize} = {width * dtype.itemsize} for {encoding}',
                               'bad_step')
    buffer = _as_bytes(data)
    if buffer.size < height * step:
        raise ImageDecodeError(f'data has {buffer.size} bytes, expected height*step = {height}*{step} '
                               f'= {height * step}', 'data_too_short')
    rows = np.ascontiguousarray(buffer[:height * step].reshape(height, step)[:, :width * dtype.itemsize])
    return _metres(rows.view(dtype), units)


def decode_compressed_depth(image_format: str, data) -> np.ndarray:
    """Decode a CompressedImage of image_transport's ``compressedDepth`` plugin to metres.

    Source: ros-perception/image_transport_plugins, compressed_depth_image_transport ``codec.cpp``.
    ``format`` is ``'<encoding>; compressedDepth png'`` (``'<encoding>; compressedDepth'`` or a bare
    encoding from older versions); ``data`` is a 12-byte ConfigHeader (little-endian int32 format, float32
    a, b) followed by a PNG of uint16 values q:
        16UC1: q is the depth in millimetres (0 = none);
        32FC1: q is quantised inverse depth, depth = a / (q - b) metres (q = 0: none or beyond depth_max).

    Returns:
        float32 [H,W] metres, NaN where there is no measurement.
    Raises:
        ImageDecodeError: an encoding other than 16UC1/32FC1 or the 'rvl' compression (kind
            'unsupported_format'), or a payload that is short, truncated or not a 16-bit single-channel PNG
            (kind 'corrupt_compressed').
    """
    encoding, _, compression = (part.strip() for part in image_format.partition(';'))
    if encoding not in DEPTH_LAYOUTS or compression not in ('', 'compressedDepth', 'compressedDepth png'):
        raise ImageDecodeError(f'unsupported compressedDepth format {image_format!r}; supported: 16UC1 or 32FC1 '
                               'with png compression (set the publisher\'s format parameter to png, not rvl)',
                               'unsupported_format')
    buffer = _as_bytes(data)
    png = buffer[COMPRESSED_DEPTH_HEADER.size:]
    try:
        check_complete(png)
    except ImageHeaderError as exc:
        raise ImageDecodeError(f'compressedDepth payload ({buffer.size} bytes): {exc}', 'corrupt_compressed') from exc
    _, a, b = COMPRESSED_DEPTH_HEADER.unpack(buffer[:COMPRESSED_DEPTH_HEADER.size].tobytes())
    quantised = cv2.imdecode(png, cv2.IMREAD_UNCHANGED) if png.size else None
    if quantised is None or quantised.dtype != np.uint16 or quantised.ndim != 2:
        raise ImageDecodeError(f'cannot decode the compressedDepth PNG ({buffer.size} bytes) as 16-bit '
                               'single-channel', 'corrupt_compressed')
    if encoding == '16UC1':
        return _metres(quantised, MILLIMETRES_PER_METRE)
    with np.errstate(divide='ignore'):
        depth = np.float32(a) / (quantised.astype(np.float32) - np.float32(b))
    depth[quantised == 0] = np.nan
    return _metres(depth, 1.0)
