"""image_codec: every supported encoding, row padding, and each malformed-payload error."""
import array
import struct

import cv2
import numpy as np
import pytest

from depth_kd_ros.io.image_codec import (
    ENCODINGS,
    ImageDecodeError,
    decode_compressed,
    decode_compressed_depth,
    decode_depth_image,
    decode_image,
)

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


def _payload(encoding, rgb, pad=0):
    """Pack ``rgb`` the way a camera driver would, with ``pad`` bytes of row padding."""
    pixels = {'rgb8': rgb, 'bgr8': rgb[..., ::-1],
              'rgba8': np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]),
              'bgra8': np.dstack([rgb[..., ::-1], np.full(rgb.shape[:2], 7, np.uint8)]),
              'mono8': rgb[..., :1]}[encoding]
    height, width, channels = pixels.shape
    rows = np.full((height, width * channels + pad), 0xAB, np.uint8)
    rows[:, :width * channels] = pixels.reshape(height, -1)
    return rows.tobytes(), width * channels + pad


@pytest.mark.parametrize('pad', [0, 5])
@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8'])
def test_decode_each_encoding_with_and_without_padding(encoding, pad):
    """Every supported encoding must give the same RGB pixels, ignoring row padding bytes."""
    data, step = _payload(encoding, RGB, pad)
    out = decode_image(encoding, 5, 7, step, data)
    expected = np.repeat(RGB[..., :1], 3, axis=2) if encoding == 'mono8' else RGB
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3)
    np.testing.assert_array_equal(out, expected)


def test_decode_accepts_rclpy_and_rosbags_containers():
    """rclpy gives array.array('B'), rosbags a uint8 numpy array; both must decode, without aliasing."""
    data, step = _payload('rgb8', RGB)
    for container in (array.array('B', data), np.frombuffer(data, np.uint8).copy()):
        out = decode_image('rgb8', 5, 7, step, container)
        np.testing.assert_array_equal(out, RGB)
        assert not np.shares_memory(out, np.asarray(container))


@pytest.mark.parametrize(('args', 'kind'), [
    (('16UC1', 5, 7, 21), 'unsupported_encoding'),
    (('yuv422', 5, 7, 21), 'odd_width'),
    (('rgb8', 0, 7, 21), 'zero_size'),
    (('rgb8', 5, 0, 21), 'zero_size'),
    (('rgb8', 5, 7, 20), 'bad_step'),
    (('rgb8', 6, 7, 21), 'data_too_short'),
])
def test_malformed_payloads_raise_with_kind(args, kind):
    """Each malformed field must raise ImageDecodeError with a stable kind for diagnostics."""
    data, _ = _payload('rgb8', RGB)
    with pytest.raises(ImageDecodeError) as info:
        decode_image(*args, data)
    assert info.value.kind == kind


def test_max_pixels_rejects_large_frames():
    """A frame above max_pixels is refused before any pixel is touched."""
    data, step = _payload('rgb8', RGB)
    with pytest.raises(ImageDecodeError, match='max_pixels') as info:
        decode_image('rgb8', 5, 7, step, data, max_pixels=34)
    assert info.value.kind == 'image_too_large'


def test_decode_compressed_png_roundtrip_and_corrupt():
    """PNG bytes decode to the original RGB; garbage and empty payloads raise ImageDecodeError."""
    ok, png = cv2.imencode('.png', RGB[..., ::-1])
    assert ok
    np.testing.assert_array_equal(decode_compressed(png.tobytes()), RGB)
    for bad in (b'', b'not an image at all'):
        with pytest.raises(ImageDecodeError) as info:
            decode_compressed(bad)
        assert info.value.kind == 'corrupt_compressed'


@pytest.mark.parametrize('suffix, what', [('.jpg', 'JPEG end-of-image marker'), ('.png', 'PNG IEND chunk')])
def test_truncated_jpeg_or_png_is_corrupt_on_every_opencv(suffix, what):
    """A file cut short is a corrupt frame whatever OpenCV does with it: OpenCV 4.5/4.6 decode a truncated JPEG
    to a partly grey image (only a libjpeg warning), OpenCV 5 fails. Padding after the end marker is fine."""
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    data = cv2.imencode(suffix, rgb[..., ::-1])[1].tobytes()
    for cut in (len(data) // 2, len(data) - 1, len(data) - 2):
        with pytest.raises(ImageDecodeError, match=what) as info:
            decode_compressed(data[:cut])
        assert info.value.kind == 'corrupt_compressed'
    for complete in (data, data + bytes(100), data + b'\xff' * 3):
        np.testing.assert_array_equal(decode_compressed(complete), decode_compressed(data))
    assert decode_compressed(data).shape == (48, 64, 3)


# Robot camera encodings (issue 14 item 2): known pixel values through cv_bridge's OpenCV conversions.

COLOUR = {'R': 200, 'G': 100, 'B': 50}


def _mosaic(pattern, height=8, width=10):
    """A uniform COLOUR scene as a Bayer sensor of ROS ``pattern`` (e.g. 'rggb': row 0 R G, row 1 G B) sees it."""
    mosaic = np.empty((height, width), np.uint8)
    for index, letter in enumerate(pattern.upper()):
        mosaic[index // 2::2, index % 2::2] = COLOUR[letter]
    return mosaic


@pytest.mark.parametrize('pad', [0, 3])
@pytest.mark.parametrize('pattern', ['rggb', 'bggr', 'gbrg', 'grbg'])
def test_bayer_mosaic_of_a_uniform_scene_gives_its_colour_everywhere(pattern, pad):
    """Each ROS Bayer name must map to the OpenCV code of the same layout (OpenCV names the second row's pixels:
    ROS rggb is OpenCV BG); a wrong mapping swaps red and blue or mixes green in, at every pixel."""
    mosaic = _mosaic(pattern)
    rows = np.full((8, 10 + pad), 0xAB, np.uint8)
    rows[:, :10] = mosaic
    out = decode_image(f'bayer_{pattern}8', 8, 10, 10 + pad, rows.tobytes())
    assert out.shape == (8, 10, 3)
    np.testing.assert_array_equal(out, np.broadcast_to([200, 100, 50], out.shape))


def _bt601(y, u, v):
    """RGB of one YUV sample, BT.601 with Y in 16..235 (what OpenCV's YUV422 conversions implement)."""
    luma = 1.164 * (y - 16)
    rgb = (luma + 1.596 * (v - 128), luma - 0.391 * (u - 128) - 0.813 * (v - 128), luma + 2.018 * (u - 128))
    return np.clip(np.rint(rgb), 0, 255)


def test_yuv422_uyvy_and_yuy2_decode_known_values():
    """Black (Y 16), white (Y 235) and a saturated red pair decode to their BT.601 RGB in both byte orders:
    UYVY is U Y0 V Y1, YUY2 is Y0 U Y1 V; the same pixels packed either way give the same RGB."""
    pairs = [(16, 16, 128, 128), (235, 235, 128, 128), (100, 150, 90, 240)]  # (Y0, Y1, U, V)
    uyvy = np.array([[u, y0, v, y1] for y0, y1, u, v in pairs], np.uint8).reshape(1, -1)
    yuy2 = np.array([[y0, u, y1, v] for y0, y1, u, v in pairs], np.uint8).reshape(1, -1)
    expected = np.array([[_bt601(y, u, v) for y0, y1, u, v in pairs for y in (y0, y1)]])
    for encoding, data in (('yuv422', uyvy), ('yuv422_yuy2', yuy2)):
        out = decode_image(encoding, 1, 6, 12, data.tobytes())
        np.testing.assert_array_equal(out[0, :4], [[0, 0, 0]] * 2 + [[255, 255, 255]] * 2)
        np.testing.assert_allclose(out, expected, atol=1)
    assert not np.array_equal(decode_image('yuv422', 1, 6, 12, yuy2.tobytes()), expected)


VALUES_16 = np.array([0, 257, 2500, 40000, 65535, 128], np.uint16)  # 2500: 9 if truncated to the high byte


@pytest.mark.parametrize('is_bigendian', [False, True])
@pytest.mark.parametrize('encoding', ['mono16', 'rgb16', 'bgr16', 'rgba16', 'bgra16'])
def test_16_bit_encodings_scale_to_8_bit_as_cv_bridge(encoding, is_bigendian):
    """16-bit values become round(v * 255 / 65535) (cv_bridge's convertTo), in the byte order is_bigendian says,
    with padded rows; channel order as the encoding names it."""
    channels = ENCODINGS[encoding].channels
    grey = np.tile(VALUES_16, (2, 1))  # [2,6]
    planes = {'mono16': [grey], 'rgb16': [grey, grey // 2, grey // 3], 'bgr16': [grey // 3, grey // 2, grey],
              'rgba16': [grey, grey // 2, grey // 3, grey], 'bgra16': [grey // 3, grey // 2, grey, grey]}[encoding]
    pixels = np.stack(planes, axis=-1).astype('>u2' if is_bigendian else '<u2')
    step = 6 * channels * 2 + 4
    rows = np.zeros((2, step), np.uint8)
    rows[:, :6 * channels * 2] = pixels.reshape(2, -1).view(np.uint8)
    out = decode_image(encoding, 2, 6, step, rows.tobytes(), is_bigendian=is_bigendian)
    expected_planes = [grey] * 3 if encoding == 'mono16' else [grey, grey // 2, grey // 3]
    expected = np.rint(np.stack(expected_planes, axis=-1) * 255.0 / 65535.0)
    np.testing.assert_array_equal(out, expected)
    assert out[0, 2, 0] == 10  # 2500 / 257 = 9.73


def test_16_bit_step_counts_two_bytes_per_value():
    """A mono16 row needs 2 * width bytes: a step of width bytes is the producer's error, named."""
    with pytest.raises(ImageDecodeError, match='bytes') as info:
        decode_image('mono16', 2, 6, 6, bytes(24))
    assert info.value.kind == 'bad_step'


# CompressedImage formats (issue 14 item 3): the bit depth comes from the PNG header, the meaning from format.

def _png(image):
    ok, data = cv2.imencode('.png', image)
    assert ok
    return data.tobytes()


DEPTH_MM = np.full((4, 5), 2500, np.uint16)


@pytest.mark.parametrize('message_format', ['16UC1; png compressed ', '16UC1; compressedDepth png',
                                            '32FC1; compressedDepth', '', 'png', 'rgb8; png compressed bgr8'])
def test_16_bit_depth_png_is_refused_with_its_format_named(message_format):
    """A 16UC1 depth PNG decoded as an 8-bit image gave grey 9 for 2500 mm and a depth map computed from it;
    it is refused (unsupported_format) naming the format, whatever the format says or omits."""
    with pytest.raises(ImageDecodeError) as info:
        decode_compressed(_png(DEPTH_MM), message_format=message_format)
    assert info.value.kind == 'unsupported_format'
    assert repr(message_format) in str(info.value)


def test_mono16_png_is_scaled_like_raw_mono16():
    """'mono16; png compressed' (image_transport's format for a mono16 camera) decodes like the raw mono16
    encoding: round(v / 257) grey, not the high byte OpenCV's IMREAD_COLOR keeps."""
    grey = np.tile(VALUES_16, (3, 1))
    out = decode_compressed(_png(grey), message_format='mono16; png compressed ')
    raw = decode_image('mono16', 3, 6, 12, grey.astype('<u2').tobytes())
    np.testing.assert_array_equal(out, raw)
    assert out[0, 2].tolist() == [10, 10, 10]


@pytest.mark.parametrize('message_format', ['rgb16; png compressed bgr16', 'bgr16; png compressed bgr16', ''])
def test_16_bit_colour_png_is_scaled_to_8_bit(message_format):
    """A 16-bit colour PNG is a camera image (depth has one channel): scaled as cv_bridge scales rgb16."""
    rgb = np.stack([np.tile(VALUES_16, (2, 1)), np.full((2, 6), 65535, np.uint16), np.zeros((2, 6), np.uint16)], -1)
    out = decode_compressed(_png(rgb[..., ::-1].copy()), message_format=message_format)  # OpenCV writes BGR
    np.testing.assert_array_equal(out, np.rint(rgb * 255.0 / 65535.0))


def test_8_bit_formats_still_decode_and_bayer_png_is_demosaiced():
    """8-bit payloads decode as before whatever the format; 'bayer_rggb8; png compressed' (a mosaic sent as
    a grey PNG) is demosaiced as the raw bayer_rggb8 encoding, not shown as a grey checkerboard."""
    for message_format in ('rgb8; jpeg compressed bgr8', 'bgr8; png compressed bgr8', 'png', ''):
        np.testing.assert_array_equal(decode_compressed(_png(RGB[..., ::-1]), message_format=message_format), RGB)
    out = decode_compressed(_png(_mosaic('rggb')), message_format='bayer_rggb8; png compressed ')
    np.testing.assert_array_equal(out, np.broadcast_to([200, 100, 50], out.shape))


MM = np.array([[0, 1, 1500], [65535, 250, 0]], np.uint16)  # millimetres, 0 = no measurement
METRES = np.where(MM > 0, MM / 1000.0, np.nan).astype(np.float32)


@pytest.mark.parametrize('big_endian', [False, True])
def test_depth_images_decode_to_metres_with_nan_for_no_measurement(big_endian):
    """16UC1 is millimetres in either byte order (rows padded), 32FC1 metres; 0, NaN and inf become NaN (REP 118)."""
    rows = np.zeros((2, 8), np.uint8)
    rows[:, :6] = MM.astype('>u2' if big_endian else '<u2').view(np.uint8)
    np.testing.assert_array_equal(decode_depth_image('16UC1', 2, 3, 8, rows.tobytes(), is_bigendian=big_endian),
                                  METRES)
    floats = np.array([[0.0, np.nan, 2.5], [np.inf, -1.0, 80.0]], np.float32)
    out = decode_depth_image('32FC1', 2, 3, 12, floats.tobytes())
    np.testing.assert_array_equal(out, np.array([[np.nan, np.nan, 2.5], [np.nan, np.nan, 80.0]], np.float32))
    with pytest.raises(ImageDecodeError) as info:
        decode_depth_image('rgb8', 2, 3, 9, bytes(18))
    assert info.value.kind == 'unsupported_encoding'
    with pytest.raises(ImageDecodeError) as info:
        decode_depth_image('16UC1', 2, 3, 6, bytes(11))
    assert info.value.kind == 'data_too_short'


def _compressed_depth(quantised: np.ndarray, a: float = 0.0, b: float = 0.0) -> np.ndarray:
    """A payload as compressed_depth_image_transport's codec.cpp writes it: ConfigHeader{INV_DEPTH=0, a, b} + PNG."""
    return np.frombuffer(struct.pack('<iff', 0, a, b) + cv2.imencode('.png', quantised)[1].tobytes(), np.uint8)


@pytest.mark.parametrize('image_format', ['16UC1; compressedDepth png', '16UC1; compressedDepth', '16UC1'])
def test_compressed_depth_16uc1_is_a_png_of_millimetres(image_format):
    """Current and older format strings of the plugin all mean a PNG of uint16 millimetres after the header."""
    np.testing.assert_array_equal(decode_compressed_depth(image_format, _compressed_depth(MM)), METRES)


def test_compressed_depth_32fc1_undoes_the_inverse_depth_quantisation():
    """32FC1: q = a / d + b stored as uint16 (depth_quantization 100, depth_max 10 m: the plugin's defaults);
    d = a / (q - b), q = 0 none. The round trip is within the quantisation step d^2 / a."""
    a = 100.0 * 101.0
    b = 1.0 - a / 10.0
    depth = np.array([[0.5, 1.0, 3.3], [9.9, 0.0, 12.0]])
    quantised = np.where((depth > 0) & (depth < 10), a / np.maximum(depth, 1e-6) + b, 0).astype(np.uint16)
    out = decode_compressed_depth('32FC1; compressedDepth png', _compressed_depth(quantised, a, b))
    np.testing.assert_allclose(out[quantised > 0], depth[quantised > 0], atol=0, rtol=1e-6 + depth.max() / a)
    assert np.isnan(out[quantised == 0]).all()
    np.testing.assert_allclose(out[0, 1], a / (quantised[0, 1] - b), rtol=1e-6)


@pytest.mark.parametrize(('image_format', 'payload', 'kind'), [
    ('16UC1; compressedDepth rvl', _compressed_depth(MM), 'unsupported_format'),
    ('8UC3; compressedDepth png', _compressed_depth(MM), 'unsupported_format'),
    ('16UC1; compressedDepth png', _compressed_depth(MM)[:12], 'corrupt_compressed'),
    ('16UC1; compressedDepth png', _compressed_depth(MM)[:40], 'corrupt_compressed'),
    ('16UC1; compressedDepth png', _compressed_depth(MM.astype(np.uint8)), 'corrupt_compressed'),
])
def test_compressed_depth_refuses_rvl_other_encodings_and_broken_payloads(image_format, payload, kind):
    """RVL and non-depth encodings are unsupported (a configuration fault); a short or 8-bit PNG is corrupt."""
    with pytest.raises(ImageDecodeError) as info:
        decode_compressed_depth(image_format, payload)
    assert info.value.kind == kind
