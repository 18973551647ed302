"""Depth image encodings (REP 118): 32FC1 metres with NaN invalid, or 16UC1 millimetres with 0 invalid.

Paper: DisDepth (arXiv 2404.16386) predicts metric depth; float32 metres is the pipeline's output. 16UC1 is
what rtabmap, many costmap plugins and bag-size-conscious users take (half the bytes), and what the offline
tool's depth/*.png files hold:
    millimetres = round(1000 * z)   for 0 < round(1000 * z) <= 65535
    0 (invalid)                      for NaN, +-inf, z <= 0, depths that round to 0 mm, and z > 65.535 m
Beyond 65.535 m the depth is invalidated, not saturated: a saturated 65535 would be a false return at 65.5 m
(a costmap would mark or clear there), while 0 says 'no measurement', as REP 118 defines it.
"""
from __future__ import annotations

import numpy as np

#: the depth topic's encodings, the first the default (params.depth_encoding's choices)
DEPTH_ENCODINGS = ('32FC1', '16UC1')
MILLIMETRES_PER_METRE = 1000.0
UINT16_MAX = 65535


def depth_to_millimetres(depth: np.ndarray) -> np.ndarray:
    """float32 [H,W] metres (NaN invalid) -> uint16 [H,W] millimetres with 0 invalid (module docstring)."""
    millimetres = np.multiply(depth, MILLIMETRES_PER_METRE, dtype=np.float64)  # exact for every float32
    np.rint(millimetres, out=millimetres)
    low, high = millimetres.min(), millimetres.max()  # NaN if any pixel is: then the test fails
    if not (low > 0 and high <= UINT16_MAX):  # some pixel invalid: zero it in place (the usual frame has none)
        with np.errstate(invalid='ignore'):  # NaN compares False: invalid
            valid = (millimetres > 0) & (millimetres <= UINT16_MAX)
        millimetres[~valid] = 0
    return millimetres.astype(np.uint16)


def encode_depth(depth: np.ndarray, encoding: str) -> np.ndarray:
    """The depth image to publish: ``depth`` itself for 32FC1, millimetres for 16UC1 (messages.fill_image
    infers the encoding from the dtype).

    Raises:
        ValueError: an encoding not in DEPTH_ENCODINGS.
    """
    if encoding == '32FC1':
        return depth
    if encoding == '16UC1':
        return depth_to_millimetres(depth)
    raise ValueError(f'depth encoding {encoding!r} is not one of {", ".join(DEPTH_ENCODINGS)}')
