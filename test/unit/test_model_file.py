"""model_file: the contract checks on real ONNX files and .pt2-style zip archives."""
import json
import zipfile

import onnx
import pytest
from onnx import TensorProto, helper

from depth_kd_ros.model_file import REQUIRED_KEYS, ModelFileError, read_model_info
from depth_kd_ros.testing.synthetic_model import build_synthetic_onnx


def test_reads_metadata_and_outputs(tmp_path):
    """A contract-obeying model gives its metadata and lists depth_std when present."""
    info = read_model_info(build_synthetic_onnx(str(tmp_path / 'm.onnx'), 24, 32, std_ratio=0.1,
                                                focal_length=21.5, max_depth=80.0))
    assert (info.input_height, info.input_width, info.focal_length, info.max_depth) == (24, 32, 21.5, 80.0)
    assert info.outputs == ('depth', 'depth_std') and info.has_uncertainty


def _edit(tmp_path, edit):
    model = onnx.load(build_synthetic_onnx(str(tmp_path / 'ok.onnx')))
    edit(model)
    path = tmp_path / 'bad.onnx'
    onnx.save(model, str(path))
    return str(path)


def _drop_key(key):
    def edit(model):
        kept = [p for p in model.metadata_props if p.key != key]
        del model.metadata_props[:]
        model.metadata_props.extend(kept)
    return edit


def _set_key(key, value):
    def edit(model):
        next(p for p in model.metadata_props if p.key == key).value = value
    return edit


def _rename_input(model):
    model.graph.input[0].name = 'pixels'


def _rename_output(model):
    model.graph.output[0].name = 'disparity'


def _dynamic_input(model):
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = 'H'


def _double_input(model):
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.DOUBLE


@pytest.mark.parametrize(('edit', 'message'), [
    (_drop_key('focal_length'), 'focal_length'),
    (_set_key('export_version', '7'), 'export_version'),
    (_set_key('focal_length', '-3'), 'focal_length'),
    (_set_key('max_depth', 'far'), 'not a number'),
    (_set_key('min_depth', '20'), 'min_depth'),
    (_set_key('input_height', '96'), 'shape'),
    (_rename_input, 'image'),
    (_rename_output, 'depth'),
    (_dynamic_input, 'static'),
    (_double_input, 'float32'),
])
def test_contract_violations_are_named(tmp_path, edit, message):
    """Every contract violation raises ModelFileError saying what is wrong (the node exits with it)."""
    with pytest.raises(ModelFileError, match=message):
        read_model_info(_edit(tmp_path, edit))


def test_design_keys_alone_are_enough_with_one_warning(tmp_path):
    """A model carrying only the docs/design.md keys (another exporter's model, metadata added by hand) loads:
    training_dataset and export_version take their defaults, and one warning line names both.

    It was refused: both keys were required.
    """
    path = build_synthetic_onnx(str(tmp_path / 'hand.onnx'), exporter_keys=False)
    assert {p.key for p in onnx.load(path).metadata_props} == set(REQUIRED_KEYS)
    info = read_model_info(path)
    assert (info.training_dataset, info.export_version) == ('unknown', '1')
    assert info.defaulted_keys == ('training_dataset', 'export_version')
    assert 'training_dataset' in info.metadata_warning and 'export_version' in info.metadata_warning
    assert '\n' not in info.metadata_warning
    assert read_model_info(build_synthetic_onnx(str(tmp_path / 'ours.onnx'))).metadata_warning == ''
    one_missing = read_model_info(_edit(tmp_path, _drop_key('export_version')))
    assert one_missing.defaulted_keys == ('export_version',) and 'training_dataset' not in one_missing.metadata_warning


def test_missing_empty_unknown_and_corrupt_files(tmp_path):
    """Missing paths, empty model_path, unknown suffixes and garbage bytes give clear errors."""
    with pytest.raises(ModelFileError, match='not found'):
        read_model_info(str(tmp_path / 'absent.onnx'))
    with pytest.raises(ModelFileError, match='model_path is empty'):
        read_model_info('')
    (tmp_path / 'm.tflite').write_bytes(b'x')
    with pytest.raises(ModelFileError, match='unknown model file type'):
        read_model_info(str(tmp_path / 'm.tflite'))
    (tmp_path / 'models').mkdir()
    (tmp_path / 'models' / 'student.onnx').write_bytes(b'x')
    with pytest.raises(ModelFileError, match=r"models is a folder, not a model file.*\['student.onnx'\]"):
        read_model_info(str(tmp_path / 'models'))  # said 'model file not found' for a path that exists
    (tmp_path / 'junk.onnx').write_bytes(b'\x00\xffnot protobuf' * 10)
    with pytest.raises(ModelFileError, match='not a readable ONNX'):
        read_model_info(str(tmp_path / 'junk.onnx'))


def test_pt2_metadata_is_read_from_the_zip_without_torch(tmp_path):
    """A .pt2 archive's extra/metadata.json gives the same ModelInfo fields (torch not imported)."""
    metadata = {'input_height': 24, 'input_width': 32, 'min_depth': 0.1, 'max_depth': 10, 'focal_length': 20,
                'model_name': 's', 'training_dataset': 'kitti', 'export_version': '1',
                'outputs': ['depth', 'depth_std']}
    path = tmp_path / 'm.pt2'
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('m/extra/metadata.json', json.dumps(metadata))
        archive.writestr('m/data/weights', b'123')
    info = read_model_info(str(path))
    assert info.input_width == 32 and info.outputs == ('depth', 'depth_std')
    (tmp_path / 'bad.pt2').write_bytes(b'not a zip')
    with pytest.raises(ModelFileError, match='not a readable .pt2'):
        read_model_info(str(tmp_path / 'bad.pt2'))


def test_model_without_metadata_is_rejected(tmp_path):
    """An ONNX graph obeying the shapes but with no metadata_props is not a deployable model."""
    graph = helper.make_graph([helper.make_node('ReduceMean', ['image'], ['depth'], keepdims=1)], 'g',
                              [helper.make_tensor_value_info('image', TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info('depth', TensorProto.FLOAT, [1, 1, 4, 4])])
    path = tmp_path / 'plain.onnx'
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(ModelFileError, match='metadata lacks'):
        read_model_info(str(path))
