"""Pure pieces of the offline tool: topic naming, calibration files, millimetre encoding, default params."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
import yaml

from depth_kd_ros.camera.calibration import CameraFileError, load_camera_yaml
from depth_kd_ros.io.bagio import COMPRESSED_IMAGE, IMAGE
from depth_kd_ros.offline.bag import output_topics
from depth_kd_ros.offline.run import default_params_file, make_pipeline
from depth_kd_ros.testing.synthetic_model import build_synthetic_onnx


@pytest.mark.parametrize('topic,msgtype,namespace', [
    ('/camera/image_raw', IMAGE, '/camera'),
    ('/camera/image_raw/compressed', COMPRESSED_IMAGE, '/camera'),
    ('/robot/front/image_rect_color', IMAGE, '/robot/front'),
    ('/image', IMAGE, ''),
])
def test_outputs_live_in_the_image_namespace(topic, msgtype, namespace):
    """image_transport naming: outputs sit beside the base image topic, as the node's relative topics do."""
    assert output_topics(topic, msgtype) == {
        'depth': f'{namespace}/depth', 'depth/camera_info': f'{namespace}/depth/camera_info',
        'points': f'{namespace}/points', 'depth/uncertainty': f'{namespace}/depth/uncertainty'}


def calibration(**changes) -> dict:
    document = {'image_width': 4, 'image_height': 3, 'distortion_model': 'plumb_bob',
                'camera_matrix': {'rows': 3, 'cols': 3, 'data': [5, 0, 2, 0, 5, 1.5, 0, 0, 1]},
                'distortion_coefficients': {'rows': 1, 'cols': 5, 'data': [0.1, 0, 0, 0, 0]},
                'rectification_matrix': {'rows': 3, 'cols': 3, 'data': [1, 0, 0, 0, 1, 0, 0, 0, 1]},
                'projection_matrix': {'rows': 3, 'cols': 4, 'data': [5, 0, 2, 0, 0, 5, 1.5, 0, 0, 0, 1, 0]}}
    document.update(changes)
    return document


def test_calibration_file_read(tmp_path):
    """A camera_calibration file gives K, D, R, P as flat arrays and the size."""
    path = tmp_path / 'cam.yaml'
    path.write_text(yaml.safe_dump(calibration()))
    camera = load_camera_yaml(path)
    assert (camera.width, camera.height, camera.distortion_model) == (4, 3, 'plumb_bob')
    np.testing.assert_array_equal(camera.k, [5, 0, 2, 0, 5, 1.5, 0, 0, 1])
    assert np.shape(camera.d) == (5,) and np.shape(camera.p) == (12,)


@pytest.mark.parametrize('changes,needle', [
    ({'camera_matrix': {'rows': 3, 'cols': 3, 'data': [1, 2, 3]}}, 'camera_matrix'),
    ({'projection_matrix': {'rows': 3, 'cols': 3, 'data': [0] * 9}}, 'projection_matrix'),
    ({'image_width': 0}, 'image_width'),
    ({'rectification_matrix': [1, 0, 0]}, 'rectification_matrix'),
])
def test_calibration_file_errors_name_the_key(tmp_path, changes, needle):
    """Malformed matrices or sizes are rejected naming the offending key."""
    path = tmp_path / 'cam.yaml'
    path.write_text(yaml.safe_dump(calibration(**changes)))
    with pytest.raises(CameraFileError, match=needle):
        load_camera_yaml(path)


def test_default_params_file_is_the_package_config():
    """Without --params-file the tool uses config/mono_depth.yaml, the node's own parameters."""
    assert default_params_file().parts[-2:] == ('config', 'mono_depth.yaml')


def test_model_with_design_keys_only_loads_with_one_warning(tmp_path, capsys):
    """A model lacking training_dataset and export_version (only the docs/design.md keys) is used, and the tool
    says so once on stderr. It was refused ('metadata lacks')."""
    model = build_synthetic_onnx(str(tmp_path / 'hand.onnx'), exporter_keys=False)
    args = argparse.Namespace(params_file=None, model=model, backend=None)
    pipeline = make_pipeline(args)
    assert pipeline.info.training_dataset == 'unknown'
    err = capsys.readouterr().err
    assert err.count('warning:') == 1 and 'training_dataset' in err and 'export_version' in err
