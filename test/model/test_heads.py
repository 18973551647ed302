"""Depth heads against their formulas (AdaBins expectation and spread; sigmoid x max_depth)."""
import numpy as np
import onnx
import onnxruntime as ort
import torch

from disdepth.models.heads import BinsHead, PlainHead


def test_bins_head_matches_formula():
    """depth = sum_k p_k c_k and std = sqrt(sum_k p_k (c_k - depth)^2), centres sorted within [min, max]."""
    head = BinsHead(6, 0.5, 10.0, num_bins=5).double().eval()
    x = torch.randn(2, 6, 4, 3, dtype=torch.float64)
    out = head(x)
    centres = head.bin_centres(x)
    assert (centres.diff(dim=1) > 0).all() and centres.min() > 0.5 and centres.max() < 10.0
    prob = head.logits(x).softmax(dim=1)
    c = centres[:, :, None, None]
    depth = (prob * c).sum(1, keepdim=True)
    std = ((prob * (c - depth) ** 2).sum(1, keepdim=True)).sqrt()
    assert torch.allclose(out['depth'], depth, atol=1e-9)
    assert torch.allclose(out['depth_std'], std, atol=1e-6)


def test_bins_head_std_is_the_spread_of_its_bin_distribution():
    """Against the distribution itself, not the formula: depth values drawn from each pixel's categorical
    distribution over the bin centres have the exported depth as mean and depth_std as standard deviation
    (200k draws: Monte Carlo error ~0.2 %). So a large depth_std/depth (1.5-3 with a SILog-trained model,
    docs/node.md) is the distribution's real spread, not an export or scaling error."""
    torch.manual_seed(0)
    head = BinsHead(6, 1e-3, 80.0, num_bins=16).double().eval()
    x = torch.randn(1, 6, 2, 3, dtype=torch.float64)
    with torch.no_grad():
        out = head(x)
        centres = head.bin_centres(x)[0]  # (K,)
        prob = head.logits(x).softmax(dim=1)[0].flatten(1).T  # (pixels, K)
    draws = centres[torch.multinomial(prob, 200_000, replacement=True)]  # (pixels, draws) metres
    torch.testing.assert_close(draws.mean(dim=1), out['depth'].flatten(), rtol=5e-3, atol=0.0)
    torch.testing.assert_close(draws.std(dim=1), out['depth_std'].flatten(), rtol=5e-3, atol=0.0)


def test_bins_head_float32_std_is_accurate_when_peaked():
    """A near one-hot bin distribution (a trained, confident pixel) keeps std near 0 despite float32."""
    head = BinsHead(4, 1e-3, 80.0, num_bins=64).eval()
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        head.logits.weight.zero_()
        head.logits.bias.fill_(-100.0)
        head.logits.bias[40] = 100.0  # all mass on bin 40
        out = head(x)
        centre = head.bin_centres(x)[0, 40]
    assert torch.allclose(out['depth'], centre.expand(1, 1, 8, 8), atol=1e-3)
    assert out['depth_std'].max() < 0.02  # metres


def test_plain_head_range():
    """sigmoid x max_depth: depth in (0, max_depth) metres, shape kept."""
    out = PlainHead(3, 10.0)(torch.randn(1, 3, 5, 7) * 100)
    assert out['depth'].shape == (1, 1, 5, 7)
    assert (out['depth'] >= 0).all() and (out['depth'] <= 10.0).all()


def test_bins_head_graph_never_transposes_the_bin_logits(tmp_path):
    """The exported head works pixels-major from the C-channel input: no Transpose moves the K per-pixel bin
    logits or probabilities (K > C), which ONNX Runtime spent 13 % of the deployed student's time on."""
    channels, bins, height, width = 4, 16, 6, 10
    head = BinsHead(channels, 1e-3, 80.0, num_bins=bins).eval()
    torch.onnx.export(head, (torch.randn(1, channels, height, width),), tmp_path / 'head.onnx', opset_version=17,
                      dynamo=False, input_names=['x'])
    model = onnx.load(tmp_path / 'head.onnx')
    moved = [node.input[0] for node in model.graph.node if node.op_type == 'Transpose']
    model.graph.output.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in moved)
    session = ort.InferenceSession(model.SerializeToString(), providers=['CPUExecutionProvider'])
    outputs = session.run(moved, {'x': np.random.rand(1, channels, height, width).astype(np.float32)})
    assert outputs and max(o.size for o in outputs) <= channels * height * width  # the input's, never K x pixels
