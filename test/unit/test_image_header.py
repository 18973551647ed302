"""image_header: PNG and JPEG sizes read from the header agree with OpenCV's decoder, and a compressed frame
over max_pixels is refused before decoding allocates it."""
import array
import tracemalloc

import cv2
import numpy as np
import pytest

from depth_kd_ros.io.image_codec import ImageDecodeError, decode_compressed
from depth_kd_ros.io.image_header import ImageHeaderError, compressed_image_size, jpeg_size

RNG = np.random.default_rng(0)


def _encode(ext, height, width, channels=3, params=()):
    image = RNG.integers(0, 256, (height, width, channels) if channels > 1 else (height, width), dtype=np.uint8)
    ok, data = cv2.imencode(ext, image, list(params))
    assert ok
    return data.tobytes()


def _segment(marker, payload):
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, 'big') + payload


@pytest.mark.parametrize(('ext', 'params', 'channels'), [
    ('.png', (), 3), ('.png', (), 1), ('.png', (cv2.IMWRITE_PNG_COMPRESSION, 0), 3),
    ('.jpg', (), 3), ('.jpg', (), 1), ('.jpg', (cv2.IMWRITE_JPEG_PROGRESSIVE, 1), 3),
    ('.jpg', (cv2.IMWRITE_JPEG_OPTIMIZE, 1, cv2.IMWRITE_JPEG_RST_INTERVAL, 2), 3),
], ids=['png', 'png_gray', 'png_stored', 'jpeg', 'jpeg_gray', 'jpeg_progressive', 'jpeg_optimized_restarts'])
@pytest.mark.parametrize(('height', 'width'), [(1, 1), (48, 64), (37, 301)])
def test_header_size_equals_the_decoded_size(ext, params, channels, height, width):
    """Baseline, progressive, grey and colour files as OpenCV writes them: (width, height) as decoded."""
    data = _encode(ext, height, width, channels, params)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert compressed_image_size(data) == (width, height) == (decoded.shape[1], decoded.shape[0])


def test_jpeg_markers_before_the_frame_header_are_walked_as_libjpeg_does():
    """A 60 kB APP1 segment (EXIF-sized), a comment, fill bytes and stray bytes before SOF still give the size
    libjpeg decodes; the inserted segments must not be read as a frame header."""
    data = _encode('.jpg', 30, 40)
    fake_sof = bytes([0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0x03])  # inside APP1's payload: must be skipped
    extra = _segment(0xE1, b'Exif\x00\x00' + fake_sof + bytes(60_000)) + _segment(0xFE, b'comment')
    data = data[:2] + extra + b'\x00\x17' + b'\xff\xff\xff' + data[2:]
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape[:2] == (30, 40)
    assert jpeg_size(data) == (40, 30)


def test_every_container_type_is_read():
    """bytes, bytearray, rclpy's array.array('B') and rosbags' uint8 numpy arrays."""
    data = _encode('.png', 5, 9)
    for container in (data, bytearray(data), array.array('B', data), np.frombuffer(data, np.uint8)):
        assert compressed_image_size(container) == (9, 5)


def test_other_formats_give_none():
    """BMP, TIFF and garbage have no PNG/JPEG signature: no size (the codec then checks after decoding)."""
    for data in (_encode('.bmp', 4, 4), _encode('.tiff', 4, 4), b'not an image', b''):
        assert compressed_image_size(data) is None


def test_every_truncation_of_a_header_is_an_error_never_a_crash():
    """Cut anywhere between the signature and the end of the size fields, a PNG or JPEG gives ImageHeaderError,
    never an IndexError, and never a wrong size."""
    for data in (_encode('.png', 48, 64), _encode('.jpg', 48, 64)):
        png = data[:4] == b'\x89PNG'
        size_end = 24 if png else data.index(b'\xff\xc0') + 9
        for cut in range(8 if png else 2, size_end):
            with pytest.raises(ImageHeaderError):
                compressed_image_size(data[:cut])
        assert compressed_image_size(data[:size_end]) == (64, 48)


@pytest.mark.parametrize(('data', 'message'), [
    (b'\x89PNG\r\n\x1a\n' + (13).to_bytes(4, 'big') + b'IDAT' + bytes(12), 'IHDR'),
    (b'\x89PNG\r\n\x1a\n' + (13).to_bytes(4, 'big') + b'IHDR' + bytes(8) + bytes(5), 'zero size'),
    (b'\xff\xd8' + _segment(0xDA, b'\x01\x02'), 'SOS'),
    (b'\xff\xd8\xff\xd9', 'EOI'),
    (b'\xff\xd8\xff\xe0\x00\x01', 'length 1'),
    (b'\xff\xd8' + _segment(0xC0, b'\x08\x00\x00\x00\x10\x03'), 'zero size'),
], ids=['png_first_chunk_not_ihdr', 'png_zero_size', 'jpeg_scan_before_frame', 'jpeg_eoi_before_frame',
        'jpeg_bad_length', 'jpeg_dnl_height'])
def test_malformed_headers_are_named(data, message):
    """Each malformed header raises ImageHeaderError saying what is wrong."""
    with pytest.raises(ImageHeaderError, match=message):
        compressed_image_size(data)


def test_small_message_of_a_huge_image_is_refused_before_decoding():
    """A 40 kB PNG of a flat 4000x3000 frame (36 MB decoded) is refused as image_too_large with no allocation
    anywhere near its decoded size; it was decoded first and checked after."""
    data = cv2.imencode('.png', np.zeros((3000, 4000, 3), np.uint8))[1].tobytes()
    assert len(data) < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(ImageDecodeError, match='4000x3000') as info:
            decode_compressed(data, max_pixels=640 * 480)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.kind == 'image_too_large'
    assert peak < 1_000_000, f'{peak} bytes allocated while refusing'


def test_size_limit_passes_frames_at_the_limit_and_checks_other_formats_after_decoding():
    """Exactly max_pixels passes; a BMP (no header reader) over the limit is still refused, after decoding; a
    JPEG header claiming 60000x60000 in 200 bytes is refused as too large, not handed to the decoder."""
    assert decode_compressed(_encode('.jpg', 20, 30), max_pixels=600).shape == (20, 30, 3)
    with pytest.raises(ImageDecodeError) as info:
        decode_compressed(_encode('.bmp', 20, 30), max_pixels=599)
    assert info.value.kind == 'image_too_large'
    forged = bytearray(_encode('.jpg', 8, 8)[:200])
    sof = forged.index(b'\xff\xc0')
    forged[sof + 5:sof + 9] = (60000).to_bytes(2, 'big') * 2
    with pytest.raises(ImageDecodeError, match='60000x60000') as info:
        decode_compressed(bytes(forged), max_pixels=3840 * 2160)
    assert info.value.kind == 'image_too_large'
    with pytest.raises(ImageDecodeError) as info:
        decode_compressed(b'\x89PNG\r\n\x1a\n\x00', max_pixels=100)
    assert info.value.kind == 'corrupt_compressed'
