"""depth_encoding: 16UC1 millimetres (REP 118: 0 invalid) as the depth topic and the offline tool's PNGs hold them."""
from types import SimpleNamespace

import numpy as np
import pytest

from depth_kd_ros.io.depth_encoding import DEPTH_ENCODINGS, depth_to_millimetres, encode_depth
from depth_kd_ros.messages import fill_image


def test_millimetres_zero_for_invalid_and_out_of_range():
    """NaN, +-inf, non-positive, sub-half-millimetre and > 65.535 m depths become 0 (invalid, not saturated to
    a false return at 65.5 m); others round to the nearest millimetre."""
    depth = np.array([[np.nan, np.inf, -np.inf, -1.0, -0.0, 0.0, 0.0004, 0.0006, 1.2344, 65.535, 65.536, 80.0]],
                     np.float32)
    np.testing.assert_array_equal(depth_to_millimetres(depth), [[0, 0, 0, 0, 0, 0, 0, 1, 1234, 65535, 0, 0]])


def test_millimetres_are_the_exact_rounding_of_each_float32_depth():
    """Every pixel is round(1000 * z) of its float32 value computed in double precision (Python's round is
    half-to-even like np.rint): no float32 product rounding shifts a millimetre."""
    depth = np.random.default_rng(0).uniform(0.0, 66.0, (40, 50)).astype(np.float32)
    rounded = [[round(float(z) * 1000.0) for z in row] for row in depth]
    expected = [[mm if 0 < mm <= 65535 else 0 for mm in row] for row in rounded]
    out = depth_to_millimetres(depth)
    assert out.dtype == np.uint16 and out.shape == depth.shape
    np.testing.assert_array_equal(out, expected)


def test_encode_depth_gives_what_the_depth_topic_publishes():
    """32FC1 publishes the metres as they are; 16UC1 the millimetres, which fill_image labels 16UC1."""
    depth = np.array([[1.5, np.nan]], np.float32)
    assert encode_depth(depth, '32FC1') is depth
    message = fill_image(SimpleNamespace(data=[]), encode_depth(depth, '16UC1'))
    assert (message.encoding, message.step, bytes(message.data)) == ('16UC1', 4, np.array([1500, 0], np.uint16)
                                                                      .tobytes())
    assert DEPTH_ENCODINGS[0] == '32FC1'
    with pytest.raises(ValueError, match='16UC1'):
        encode_depth(depth, 'mono16')
