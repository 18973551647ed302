"""Image size from a PNG or JPEG header, read before decoding (OpenCV has no header-only API).

Why: ``cv2.imdecode`` allocates the whole image before anything can check its size, and a compressed
message of a few kB can decode to gigapixels (a flat 20000x20000 PNG deflates to ~1 MB; a JPEG header
may claim 65535x65535). The node's ``max_input_pixels`` is checked on these sizes first.

PNG (W3C PNG specification, 5.2-5.3 and 11.2.2): the 8-byte signature ``89 50 4E 47 0D 0A 1A 0A``, then
the IHDR chunk, which must come first: length (4 bytes, 13), type ``IHDR``, width (4, big-endian),
height (4, big-endian), ...

JPEG (ITU-T T.81 annex B): SOI ``FF D8``, then marker segments ``FF m`` + length (2 bytes, big-endian,
counting itself) + payload, up to the frame header SOFn (m in C0-C3, C5-C7, C9-CB, CD-CF: not C4 DHT,
C8 JPG, CC DAC) whose payload is precision (1), height (2), width (2), ... Between segments the scan
follows libjpeg's ``next_marker`` (what OpenCV decodes with): non-FF bytes are skipped, FF fill bytes
swallowed, and FF 00 is not a marker; TEM (01) and RSTn (D0-D7) have no length. Reaching SOS (DA) or EOI
(D9) before a frame header means there is no image: libjpeg fails there too, as on a height of 0
(defined later by a DNL marker, which libjpeg does not support).

The end of a complete file (``check_complete``): a PNG ends with its IEND chunk (11.2.5: length 0, type
``IEND``, CRC ``AE 42 60 82``), a JPEG with EOI ``FF D9`` (B.2.1), either possibly followed by 00/FF padding
(drivers that send fixed-size buffers). Why: libjpeg in OpenCV 4.5 and 4.6 (Ubuntu 22.04, 24.04) decodes a
truncated JPEG to a partly grey image with only a warning on stderr, where OpenCV 5 fails.

EXIF orientation (``jpeg_exif_orientation``; CIPA DC-008 EXIF 2.32 section 4.5.4, TIFF 6.0 section 2): an APP1
segment (``FF E1``) whose payload starts with ``Exif\0\0`` holds a TIFF structure: byte order ``II`` (little-endian)
or ``MM``, 42, the offset of IFD0; IFD0 is a count (2 bytes) of 12-byte entries tag (2), type (2), count (4),
value (4); tag 0x0112 (Orientation, type 3 SHORT) is 1 for pixels stored as displayed, 2-8 for a mirror and/or a
rotation a viewer applies. Phones store the sensor's pixels and this tag; the frame path reads pixels as stored
(image_codec), so the tag only tells which files a viewer shows turned.
"""
from __future__ import annotations

import struct
from collections.abc import Iterator

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
JPEG_SOI = b'\xff\xd8'
PNG_END = b'IEND\xaeB`\x82'  # the IEND chunk's type and CRC: the last 8 bytes of a complete PNG
JPEG_EOI = b'\xff\xd9'
PADDING = b'\x00\xff'
SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0-7: no length field
EXIF_HEADER = b'Exif\x00\x00'
ORIENTATION_TAG = 0x0112


class ImageHeaderError(ValueError):
    """A PNG or JPEG signature whose header is truncated or malformed (the message says where)."""


def png_size(data) -> tuple[int, int]:
    """(width, height) in pixels from a PNG's IHDR chunk.

    Args:
        data: the file's bytes (any bytes-like object), starting with the PNG signature.
    Raises:
        ImageHeaderError: shorter than signature + IHDR, IHDR not the first chunk, or a zero size.
    """
    head = bytes(memoryview(data).cast('B')[:24])
    if len(head) < 24:
        raise ImageHeaderError(f'PNG truncated in its header ({len(head)} bytes)')
    if head[12:16] != b'IHDR' or int.from_bytes(head[8:12], 'big') != 13:
        raise ImageHeaderError('PNG does not start with an IHDR chunk')
    width, height = int.from_bytes(head[16:20], 'big'), int.from_bytes(head[20:24], 'big')
    if width == 0 or height == 0:
        raise ImageHeaderError(f'PNG IHDR gives a zero size {width}x{height}')
    return width, height


def _jpeg_segments(view: memoryview) -> Iterator[tuple[int, int, int]]:
    """``(marker, index of its length field, length)`` of each marker segment of a JPEG up to SOS or EOI, which end
    it (yielded with length 0), scanning as libjpeg's ``next_marker`` does (module docstring).

    Raises:
        ImageHeaderError: the data ends before SOS or EOI, or a segment length is below 2.
    """
    size, index = len(view), 2
    while True:
        while index < size and view[index] != 0xFF:  # libjpeg skips (and warns about) stray bytes
            index += 1
        while index < size and view[index] == 0xFF:  # fill bytes
            index += 1
        if index >= size:
            raise ImageHeaderError('JPEG ends before its frame header (SOFn)')
        marker = view[index]
        index += 1
        if marker == 0x00 or marker in STANDALONE_MARKERS:  # FF 00: stuffed data byte, not a marker
            continue
        if marker in (0xD9, 0xDA):
            yield marker, index, 0
            return
        if index + 2 > size:
            raise ImageHeaderError(f'JPEG truncated in the length of marker FF{marker:02X}')
        length = view[index] << 8 | view[index + 1]
        if length < 2:
            raise ImageHeaderError(f'JPEG marker FF{marker:02X} has length {length} (< 2)')
        yield marker, index, length
        index += length


def jpeg_size(data) -> tuple[int, int]:
    """(width, height) in pixels from a JPEG's frame header (SOFn), scanning markers as libjpeg does.

    Args:
        data: the file's bytes (any bytes-like object), starting with SOI (FF D8).
    Raises:
        ImageHeaderError: no frame header before the scan or the end of the data, a segment length below 2,
            or a zero width or height.
    """
    view = memoryview(data).cast('B')
    for marker, index, _ in _jpeg_segments(view):
        if marker in (0xD9, 0xDA):
            raise ImageHeaderError(f'JPEG reaches {"EOI" if marker == 0xD9 else "SOS"} before a frame header')
        if marker in SOF_MARKERS:
            if index + 7 > len(view):
                raise ImageHeaderError('JPEG truncated in its frame header')
            height = view[index + 3] << 8 | view[index + 4]
            width = view[index + 5] << 8 | view[index + 6]
            if width == 0 or height == 0:
                raise ImageHeaderError(f'JPEG frame header gives a zero size {width}x{height} (DNL is unsupported)')
            return width, height
    raise AssertionError('unreachable: _jpeg_segments ends at SOS or EOI')


def jpeg_exif_orientation(data) -> int:
    """The EXIF orientation of a JPEG (module docstring): 1 (as stored) to 8; 1 when it has none, and for anything
    that is not a well-formed JPEG with EXIF (a file's first 128 kB hold its EXIF: APP1 segments are at most
    64 kB).

    Args:
        data: the file's bytes or its beginning (any bytes-like object).
    """
    view = memoryview(data).cast('B')
    if bytes(view[:2]) != JPEG_SOI:
        return 1
    try:
        for marker, index, length in _jpeg_segments(view):
            if marker in SOF_MARKERS or marker in (0xD9, 0xDA):
                return 1
            if marker == 0xE1 and bytes(view[index + 2:index + 8]) == EXIF_HEADER:
                return _tiff_orientation(bytes(view[index + 8:index + length]))
    except ImageHeaderError:
        pass
    return 1


def _tiff_orientation(tiff: bytes) -> int:
    """Tag 0x0112 of IFD0 of an EXIF TIFF structure, 1 when absent or malformed."""
    order = {b'II': '<', b'MM': '>'}.get(tiff[:2])
    if order is None or len(tiff) < 8:
        return 1
    (ifd,) = struct.unpack_from(f'{order}I', tiff, 4)
    if ifd + 2 > len(tiff):
        return 1
    (count,) = struct.unpack_from(f'{order}H', tiff, ifd)
    for entry in range(ifd + 2, min(ifd + 2 + 12 * count, len(tiff) - 11), 12):
        tag, kind = struct.unpack_from(f'{order}HH', tiff, entry)
        if tag == ORIENTATION_TAG and kind == 3:
            (value,) = struct.unpack_from(f'{order}H', tiff, entry + 8)
            return value if 1 <= value <= 8 else 1
    return 1


def compressed_image_size(data) -> tuple[int, int] | None:
    """(width, height) of a PNG or JPEG from its header, or None for any other format.

    Raises:
        ImageHeaderError: a PNG or JPEG signature with a truncated or malformed header.
    """
    head = bytes(memoryview(data).cast('B')[:8])
    if head == PNG_SIGNATURE:
        return png_size(data)
    if head[:2] == JPEG_SOI:
        return jpeg_size(data)
    return None


def check_complete(data) -> None:
    """Check that a PNG or JPEG is not truncated: it ends with its IEND chunk or EOI marker, after which only
    00/FF padding may follow. Any other format passes (left to the decoder).

    Args:
        data: the file's bytes (any bytes-like object).
    Raises:
        ImageHeaderError: a PNG or JPEG without its end (the message names the missing marker).
    """
    view = memoryview(data).cast('B')
    head = bytes(view[:8])
    if head == PNG_SIGNATURE:
        end, what = PNG_END, 'PNG IEND chunk'
    elif head[:2] == JPEG_SOI:
        end, what = JPEG_EOI, 'JPEG end-of-image marker FF D9'
    else:
        return
    if bytes(view[-len(end):]) != end and not bytes(view).rstrip(PADDING).endswith(end):  # padding is rare
        raise ImageHeaderError(f'the {what} is missing: the file is truncated')
