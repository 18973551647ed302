"""Synthetic contract-obeying ONNX depth model, for tests, benchmarks and a model-free demo.

Exported students follow this contract (docs/design.md section 3); this graph obeys it without training, so the
runtime can be checked on its own. Formula (per pixel, image RGB in 0..1, gray = mean over channels):
    depth     = base + gain * gray                       [1,1,H,W] metres
    depth_std = std_ratio * red * depth (optional)       [1,1,H,W] metres, so depth_std / depth = std_ratio * red
With ``slow_steps`` > 0, a chain of [N,N] MatMuls that depends on the input (so ORT cannot fold it) makes
inference take a controllable time; its contribution to depth is multiplied by 0 at the end.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def build_synthetic_onnx(path: str, height: int = 48, width: int = 64, *, base: float = 2.0,
                         gain: float = 4.0, std_ratio: float | None = None, focal_length: float = 50.0,
                         min_depth: float = 0.1, max_depth: float = 10.0, slow_steps: int = 0,
                         slow_size: int = 512, model_name: str = 'synthetic', exporter_keys: bool = True) -> str:
    """Write the model to ``path`` and return ``path``.

    Args:
        height, width: model input size (pixels).
        base, gain: depth = base + gain * gray (metres).
        std_ratio: when given, add output depth_std = std_ratio * red * depth.
        focal_length: metadata focal_length (pixels at height x width).
        slow_steps, slow_size: number and size of the input-dependent MatMuls that slow inference.
        exporter_keys: also write training_dataset and export_version (what training/export.py adds);
            False gives only the required keys of docs/design.md section 3 (another exporter's model
            annotated by hand).
    """

    def const(name, value):
        return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)

    initializers = [const('base', base), const('gain', gain), const('zero', 0.0)]
    nodes = [helper.make_node('ReduceMean', ['image', 'axes1'], ['gray'], keepdims=1),
             helper.make_node('Mul', ['gray', 'gain'], ['scaled']),
             helper.make_node('Add', ['scaled', 'base'], ['depth_raw'])]
    initializers.append(numpy_helper.from_array(np.array([1], dtype=np.int64), 'axes1'))
    last = 'depth_raw'
    if slow_steps > 0:
        initializers += [numpy_helper.from_array(np.array([slow_size, slow_size], dtype=np.int64), 'nn'),
                         const('w', np.full((slow_size, slow_size), 1.0 / slow_size))]
        nodes += [helper.make_node('ReduceMean', ['image'], ['mean_all'], keepdims=0),
                  helper.make_node('Expand', ['mean_all', 'nn'], ['m0'])]
        for step in range(slow_steps):
            nodes.append(helper.make_node('MatMul', [f'm{step}', 'w'], [f'm{step + 1}']))
        nodes += [helper.make_node('ReduceMean', [f'm{slow_steps}'], ['slow_mean'], keepdims=0),
                  helper.make_node('Mul', ['slow_mean', 'zero'], ['slow_zero']),
                  helper.make_node('Add', ['depth_raw', 'slow_zero'], ['depth_slow'])]
        last = 'depth_slow'
    nodes.append(helper.make_node('Identity', [last], ['depth']))
    shape_out = [1, 1, height, width]
    outputs = [helper.make_tensor_value_info('depth', TensorProto.FLOAT, shape_out)]
    if std_ratio is not None:
        initializers += [const('std_ratio', std_ratio),
                         numpy_helper.from_array(np.array([0], dtype=np.int64), 'c0'),
                         numpy_helper.from_array(np.array([1], dtype=np.int64), 'c1')]
        nodes += [helper.make_node('Slice', ['image', 'c0', 'c1', 'c1'], ['red']),
                  helper.make_node('Mul', ['red', 'std_ratio'], ['rel']),
                  helper.make_node('Mul', ['rel', 'depth'], ['depth_std'])]
        outputs.append(helper.make_tensor_value_info('depth_std', TensorProto.FLOAT, shape_out))
    graph = helper.make_graph(nodes, model_name, [helper.make_tensor_value_info(
        'image', TensorProto.FLOAT, [1, 3, height, width])], outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 18)], ir_version=9)
    metadata = {'input_height': height, 'input_width': width, 'min_depth': min_depth,
                'max_depth': max_depth, 'focal_length': focal_length, 'model_name': model_name}
    if exporter_keys:
        metadata.update(training_dataset='none (synthetic graph)', export_version='1')
    helper.set_model_props(model, {key: str(value) for key, value in metadata.items()})
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def ground_image(width: int, height: int, fy: float, cy: float, floor_depth_scale: float, *, gain: float,
                 base: float = 0.0):
    """uint8 [H,W,3] RGB whose synthetic-model depth (base + gain * gray, focal scale 1) is a flat floor seen by a
    level camera, rows below the principal point: depth = floor_depth_scale * fy / (v - cy), with
    floor_depth_scale = (model's scale error) x (camera height in metres). Floor depths beyond the model's range
    (base + gain) and the rows above the horizon are black: depth ``base``, invalid (NaN) with the default base 0.
    Gray levels are quantised to 1/255: the depth's relative error is at most gain / (510 * depth).
    """
    rows = np.arange(height, dtype=np.float64) - cy
    with np.errstate(divide='ignore'):
        depth = np.where(rows > 0, floor_depth_scale * fy / rows, np.inf)
    gray = np.where(depth <= base + gain, np.round((depth - base) / gain * 255.0), 0).clip(0, 255).astype(np.uint8)
    return np.repeat(np.repeat(gray[:, None, None], width, axis=1), 3, axis=2)
