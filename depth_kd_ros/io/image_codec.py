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

CompressedImage: ``format`` says what the bytes hold. image_transport_plugins' compressed publisher
(compressed_image_transport, compressed_publisher.cpp) writes ``'<encoding>; <codec> compressed [<target>]'``:

    <enc>; jpeg compressed bgr8         a colour encoding (16-bit ones too), converted to bgr8 before imencode
    <enc>; jpeg compressed mono8        any other 8/16-bit encoding (mono; bayer, demosaiced to grey by cv_bridge)
    <enc>; png compressed bgr8|bgr16    a colour encoding, converted to bgr of its bit depth
    <enc>; png compressed               any other 8/16-bit encoding, the message's pixels as they are (a bayer
                                        mosaic, mono16)
    <enc>; tiff compressed              any 8/16/32-bit encoding, the message's pixels as they are, in the
                                        encoding's channel order (an rgb8 TIFF holds R, G, B where OpenCV reads
                                        B, G, R)

so the decoded pixels are in the layout of the target when there is one, else (png, tiff) of the encoding, which
``ENCODINGS`` then turns into RGB as it does the raw encoding. Older publishers send only ``'jpeg'`` or ``'png'``,
and a file has no format: its pixels are what OpenCV reads (grey, BGR, BGRA). Every image is decoded as stored
(IMREAD_UNCHANGED): its bit depth kept, and an EXIF orientation never applied, as ROS decodes CompressedImage
(cv_bridge, the compressed subscriber's default mode) and reads depth PNGs, and as camera_info describes the
sensor's pixels (docs/design.md section 3). Refused (kind 'unsupported_format', the format named):

    compressedDepth             a depth image (compressed_depth_image_transport), not a camera image
    video streams               h264, h265/hevc, av1, vp8/vp9, theora (Isaac ROS's encoder, ffmpeg and foxglove
                                transports): each message is a packet that depends on earlier ones
    zstd                        zstd_image_transport's own packing of the raw pixels
    generic encodings           16UC1, 32FC1, 8UC3, ...: no colour meaning (cv_bridge refuses them as rgb8 too)
    a layout mismatch           pixels whose channels or bit depth differ from what the format names
    16-bit grey, no encoding    most likely depth (16UC1), not a camera image
    other formats               whose data OpenCV cannot read either (undecodable data under an image_transport
                                format, or none, is 'corrupt_compressed')
"""
from __future__ import annotations

import re
import struct
from typing import NamedTuple

import cv2
import numpy as np

from depth_kd_ros.io.depth_encoding import MILLIMETRES_PER_METRE
from depth_kd_ros.io.image_header import ImageHeaderError, check_complete, compressed_image_size


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


#: video codecs (and ffmpeg's encoder names for them: libx264, h264_nvenc, hevc_vaapi, ...) in a format
VIDEO_FORMAT = re.compile(r'(lib)?(h26[45]|x26[45]|hevc|av1|vp[89]|theora|mpeg4)(_\w+)?')
#: the codecs of image_transport's compressed plugin
COMPRESSED_CODECS = ('jpeg', 'png', 'tiff')
#: OpenCV's channel order of a decoded image without a named encoding, by channel count
OPENCV_LAYOUTS = {1: 'mono', 3: 'bgr', 4: 'bgra'}


class CompressedFormat(NamedTuple):
    """What a CompressedImage ``format`` says (module docstring)."""

    codec: str  # 'jpeg', 'png' or 'tiff' as image_transport names it, '' when the format names none
    layout: str  # the ENCODINGS entry the decoded pixels are in; '' for OpenCV's own (OPENCV_LAYOUTS)


def _unsupported(message_format: str, why: str) -> ImageDecodeError:
    return ImageDecodeError(f'format {message_format!r}: {why}', 'unsupported_format')


def parse_format(message_format: str) -> CompressedFormat:
    """The codec and pixel layout a CompressedImage ``format`` names (module docstring).

    Raises:
        ImageDecodeError ('unsupported_format'): compressedDepth, a video stream, zstd_image_transport's format,
            a generic encoding, or an encoding this module does not decode.
    """
    words = [w for w in re.split(r'[;\s]+', message_format.lower()) if w]
    if 'compresseddepth' in words:
        raise _unsupported(message_format, 'compressedDepth carries a depth image, not a camera image')
    if any(VIDEO_FORMAT.fullmatch(w) for w in words):
        raise _unsupported(message_format, 'a video stream (each message a packet that depends on earlier ones), '
                           "not an image; give a raw Image topic or image_transport's compressed (jpeg, png) one")
    if words == ['zstd']:
        raise _unsupported(message_format, "zstd_image_transport's packing of raw pixels is not supported; give "
                           "a raw Image topic or image_transport's compressed (jpeg, png) one")
    encoding, separator, compression = message_format.partition(';')
    if not separator:  # older publishers: 'jpeg', 'png'
        return CompressedFormat('', '')
    encoding, (codec, *rest) = encoding.strip(), compression.split() or ['']
    if GENERIC_ENCODING.fullmatch(encoding):
        raise _unsupported(message_format, f'{encoding} is not a camera image (no colour meaning; cv_bridge does '
                           'not convert it to rgb8 either)')
    target = rest[1] if len(rest) > 1 and rest[0] == 'compressed' else ''
    layout = target or (encoding if codec in ('png', 'tiff') else '')
    if layout and layout not in ENCODINGS:
        raise _unsupported(message_format, f'{layout} is not an encoding this decoder knows; supported: '
                           f'{sorted(ENCODINGS)}')
    return CompressedFormat(codec if codec in COMPRESSED_CODECS else '', layout)


def decode_compressed(data, *, message_format: str = '', max_pixels: int | None = None) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage payload (JPEG, PNG, TIFF, ... as OpenCV reads them) to RGB, as stored.

    Args:
        data: the compressed bytes (bytes, array.array('B') or uint8 numpy array).
        message_format: the message's ``format`` (module docstring); '' for a file, whose encoding is unknown.
        max_pixels: reject images with more than this many pixels (None: no limit). PNG and JPEG (what
            image_transport's compressed plugin sends) are checked on their header, before decoding
            allocates anything; other formats OpenCV reads are checked after decoding.
    Returns:
        uint8 [H,W,3] RGB of the stored pixels (an EXIF orientation is not applied).
    Raises:
        ImageDecodeError: empty, truncated (a PNG or JPEG without its end, image_header.check_complete: OpenCV
            4.5/4.6 decode such a JPEG to grey) or undecodable data under an image_transport format or none (kind
            'corrupt_compressed'), more than ``max_pixels`` pixels ('image_too_large'), a format or pixels that
            are not a camera image ('unsupported_format', module docstring).
    """
    buffer = _as_bytes(data)
    if buffer.size == 0:
        raise ImageDecodeError('compressed image is empty', 'corrupt_compressed')
    codec, layout = parse_format(message_format)
    if max_pixels is not None:
        _check_header_pixels(buffer, max_pixels)
    try:
        check_complete(buffer)
    except ImageHeaderError as exc:
        raise ImageDecodeError(f'compressed image ({buffer.size} bytes): {exc}', 'corrupt_compressed') from exc
    stored = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)  # as stored: bit depth kept, no EXIF rotation
    if stored is None:
        if codec or message_format.strip().lower() in ('', *COMPRESSED_CODECS):
            raise ImageDecodeError(f'cannot decode compressed image ({buffer.size} bytes)', 'corrupt_compressed')
        raise _unsupported(message_format, "not a format of image_transport's compressed plugin "
                           f'({", ".join(COMPRESSED_CODECS)}), and OpenCV cannot read its {buffer.size} bytes either')
    if max_pixels is not None:  # formats without a header reader in image_header
        _check_pixels(stored.shape[1], stored.shape[0], max_pixels)
    return _stored_to_rgb(stored, layout, message_format)


def _stored_to_rgb(stored: np.ndarray, layout: str, message_format: str) -> np.ndarray:
    """Decoded pixels in ``layout`` (an ENCODINGS entry; '' for OpenCV's own order) as uint8 RGB."""
    channels = 1 if stored.ndim == 2 else stored.shape[2]
    if stored.dtype not in (np.uint8, np.uint16):
        raise _unsupported(message_format, f'{stored.dtype} samples are not a camera image')
    value_bytes = stored.dtype.itemsize
    if not layout:
        if value_bytes == 2 and channels == 1:
            raise _unsupported(message_format, 'a 16-bit grey image without an encoding is depth-like data '
                               "(16UC1), not a camera image; a mono16 camera sends the format 'mono16; png "
                               "compressed '")
        if channels not in OPENCV_LAYOUTS:
            raise _unsupported(message_format, f'an image of {channels} channels is not a camera image')
        layout = f'{OPENCV_LAYOUTS[channels]}{8 * value_bytes}'
    expected = ENCODINGS[layout]
    if (channels, value_bytes) != (expected.channels, expected.value_bytes):
        raise _unsupported(message_format, f'it names {layout} ({expected.channels} channels of '
                           f'{8 * expected.value_bytes} bits) but the image has {channels} of {8 * value_bytes}')
    pixels = scale_16_to_8(stored) if value_bytes == 2 else stored
    return _to_rgb(pixels, expected.conversion, layout)


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
