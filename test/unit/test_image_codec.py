"""image_codec: every supported encoding, row padding, and each malformed-payload error."""
import array

import cv2
import numpy as np
import pytest

from depth_kd_ros.image_codec import ImageDecodeError, decode_compressed, decode_image

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
    (('yuv422', 5, 7, 21), 'unsupported_encoding'),
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
