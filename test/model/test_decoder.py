"""Student decoder (docs/design.md section 2): dense or depthwise separable steps, the output stride."""
import pytest
import torch
from torch import nn

from disdepth.models.decoder import Decoder

FEATURES = [dict(num_chs=c, reduction=r) for c, r in ((24, 4), (32, 8), (96, 16), (320, 32))]  # MobileNetV2 taps


def maps(height=64, width=96):
    return [torch.randn(1, info['num_chs'], height // info['reduction'], width // info['reduction'])
            for info in FEATURES]


@pytest.mark.parametrize('separable', [[], [0, 2]])
@pytest.mark.parametrize('channels, stride', [([32, 16, 16, 8], 2), ([32, 16, 16], 4)])
def test_output_stride_follows_the_number_of_steps(separable, channels, stride):
    """4 steps end at stride 2, 3 at stride 4, whatever the blocks; channels are the last step's."""
    decoder = Decoder(FEATURES, channels, separable).eval()
    with torch.no_grad():
        out = decoder(maps())
    assert out.shape == (1, channels[-1], 64 // stride, 96 // stride)
    assert decoder.reduction == stride


def test_separable_steps_are_depthwise_then_pointwise():
    """A step in ``separable_steps`` has a depthwise 3x3 (groups = channels) and a dense 1x1; the others keep
    one dense 3x3 (the paper-scale decoder)."""
    decoder = Decoder(FEATURES, [32, 16, 16, 8], [0, 3])
    for step, block in enumerate(decoder.blocks):
        convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
        if step in (0, 3):
            depthwise, pointwise = convs
            assert depthwise.kernel_size == (3, 3) and depthwise.groups == depthwise.in_channels
            assert pointwise.kernel_size == (1, 1) and pointwise.groups == 1
        else:
            assert [(c.kernel_size, c.groups) for c in convs] == [((3, 3), 1)]


def test_bad_keys_are_named():
    with pytest.raises(ValueError, match='separable steps'):
        Decoder(FEATURES, [8, 8, 8, 8], [4])
    with pytest.raises(ValueError, match='at least 3'):
        Decoder(FEATURES, [8, 8])
