"""Image size from a PNG or JPEG header, read before decoding (OpenCV has no header-only API).

Why: ``cv2.imdecode`` allocates the whole image before anything can check its size, and a compressed
message of a few kB can decode to gigapixels (a flat 20000x20000 PNG deflates to ~1 MB; a JPEG header
may claim 65535x65535). The node's ``max_input_pixels`` is checked on these sizes first.

PNG (W3C PNG specification, 5.2-5.3 and 11.2.2): the 8-byte signature ``89 50 4E 47 0D 0A 1A 0A``, then
the IHDR chunk, which must come first: length (4 bytes, 13), type ``IHDR``, width (4, big-endian),
height (4, big-endian), bit depth (1: 1, 2, 4, 8 or 16 bits per sample), colour type (1: 0 grey, 2 RGB,
3 palette, 4 grey + alpha, 6 RGBA), ... The bit depth tells a 16-bit PNG (mono16 or 16UC1 data) from an 8-bit
one before OpenCV's IMREAD_COLOR silently keeps only the high byte of each sample.

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
"""
from __future__ import annotations

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
PNG_GREY_COLOUR_TYPES = frozenset({0, 4})  # grey, grey + alpha: one sample of colour per pixel
JPEG_SOI = b'\xff\xd8'
PNG_END = b'IEND\xaeB`\x82'  # the IEND chunk's type and CRC: the last 8 bytes of a complete PNG
JPEG_EOI = b'\xff\xd9'
PADDING = b'\x00\xff'
SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0-7: no length field


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


def png_sample_format(data) -> tuple[int, int]:
    """(bit depth, colour type) from a PNG's IHDR chunk (module docstring).

    Args:
        data: the file's bytes (any bytes-like object), starting with the PNG signature.
    Raises:
        ImageHeaderError: shorter than signature + IHDR up to the colour type, or IHDR not the first chunk.
    """
    head = bytes(memoryview(data).cast('B')[:26])
    if len(head) < 26:
        raise ImageHeaderError(f'PNG truncated in its header ({len(head)} bytes)')
    if head[12:16] != b'IHDR':
        raise ImageHeaderError('PNG does not start with an IHDR chunk')
    return head[24], head[25]


def jpeg_size(data) -> tuple[int, int]:
    """(width, height) in pixels from a JPEG's frame header (SOFn), scanning markers as libjpeg does.

    Args:
        data: the file's bytes (any bytes-like object), starting with SOI (FF D8).
    Raises:
        ImageHeaderError: no frame header before the scan or the end of the data, a segment length below 2,
            or a zero width or height.
    """
    view = memoryview(data).cast('B')
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
            raise ImageHeaderError(f'JPEG reaches {"EOI" if marker == 0xD9 else "SOS"} before a frame header')
        if index + 2 > size:
            raise ImageHeaderError(f'JPEG truncated in the length of marker FF{marker:02X}')
        length = view[index] << 8 | view[index + 1]
        if length < 2:
            raise ImageHeaderError(f'JPEG marker FF{marker:02X} has length {length} (< 2)')
        if marker in SOF_MARKERS:
            if index + 7 > size:
                raise ImageHeaderError('JPEG truncated in its frame header')
            height = view[index + 3] << 8 | view[index + 4]
            width = view[index + 5] << 8 | view[index + 6]
            if width == 0 or height == 0:
                raise ImageHeaderError(f'JPEG frame header gives a zero size {width}x{height} (DNL is unsupported)')
            return width, height
        index += length


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
