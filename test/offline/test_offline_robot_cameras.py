"""`mono_depth_offline bag` with what robot cameras need (issue 14 items 1 and 7): distorted frames rectified
(``rectify``) and 16-bit depth (``depth_encoding: 16UC1``), through the params file as in the node."""
from __future__ import annotations

import cv2
import numpy as np
from offline_helpers import Frame, assert_clean_error, camera_yaml, k_matrix, read_bag, run, write_bag

from depth_kd_ros.offline.run import default_params_file
from depth_kd_ros.testing.synthetic_model import build_synthetic_onnx

WIDTH, HEIGHT = 64, 48  # the synthetic model's input size: no resizing, so the expected depth is exact
K = k_matrix(50.0, 50.0, 30.5, 20.5)  # focal = the model's: focal scale 1 on the raw camera
D = np.array([-0.25, 0.08, 0.002, -0.001, 0.0])  # plumb_bob, a wide-angle lens's barrel distortion
P = np.array([45.0, 0.0, 31.0, 0.0, 0.0, 45.0, 22.0, 0.0, 0.0, 0.0, 1.0, 0.0])  # the rectified camera


def textured_frames(count: int) -> list[Frame]:
    """Frames whose grey level varies everywhere (so any shift of the pixels changes the depth), with a black and
    a white patch in the middle (the extremes of the model's depth)."""
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH]
    frames = []
    for i in range(count):
        rgb = np.stack([(u * 4 + 9 * i) % 256, (v * 5) % 256, (u * v + 30 * i) % 256], -1).astype(np.uint8)
        rgb[20:26, 24:32], rgb[20:26, 32:40] = 0, 255
        frames.append(Frame(f'frame_{i}', rgb, K))
    return frames


def params_file(tmp_path, **changes: str):
    """The package's params file with ``key: value`` lines replaced (``changes`` maps a line to its new value)."""
    text = default_params_file().read_text()
    for old, new in changes.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / 'params.yaml'
    path.write_text(text)
    return path


def depth_image(message) -> np.ndarray:
    dtype = {'32FC1': np.float32, '16UC1': np.uint16}[message.encoding]
    return np.frombuffer(message.data.tobytes(), dtype).reshape(message.height, message.width)


def test_rectify_in_a_bag_gives_the_depth_of_opencvs_rectified_frame(tmp_path, model_path, capsys):
    """rectify: true: each raw frame is undistorted and rectified (OpenCV's initUndistortRectifyMap + remap with
    the camera_info's K, D, R, P, as image_proc does) before inference, so depth is the synthetic model's
    (2 + 4 * grey) of the rectified frame scaled by P's focal (45 / 50); depth/camera_info is the rectified
    camera (D zero, K from P). A frame whose camera_info has a distortion model it cannot rectify is skipped and
    named, never written as if rectified."""
    frames = textured_frames(3)
    bag = write_bag(tmp_path / 'in', frames, calibration=lambda i: {
        'distortion_model': 'kannala_brandt' if i == 1 else 'plumb_bob', 'd': D, 'p': P})
    params = params_file(tmp_path, **{'rectify: false': 'rectify: true'})
    code, out, _ = run('bag', bag, tmp_path / 'out', '--model', model_path, '--params-file', params, '--quiet',
                       capsys=capsys)
    assert code == 0
    assert 'written: 2, skipped: 1' in out and '(cannot rectify (unknown_distortion_model)): #1' in out
    _, messages = read_bag(tmp_path / 'out')
    maps = cv2.initUndistortRectifyMap(np.reshape(K, (3, 3)), D, np.eye(3), np.reshape(P, (3, 4)), (WIDTH, HEIGHT),
                                       cv2.CV_16SC2)
    for (_, depth), frame in zip(messages['/camera/depth'], (frames[0], frames[2]), strict=True):
        rectified = cv2.remap(frame.rgb, *maps, cv2.INTER_LINEAR)
        expected = (2.0 + 4.0 * rectified.astype(np.float32).mean(axis=2) / 255.0) * 45.0 / 50.0
        np.testing.assert_allclose(depth_image(depth), expected, rtol=1e-4)
        raw = (2.0 + 4.0 * frame.rgb.astype(np.float32).mean(axis=2) / 255.0)
        assert not np.allclose(depth_image(depth), raw * 45.0 / 50.0, rtol=1e-2)  # the rectification mattered
    for _, info in messages['/camera/depth/camera_info']:
        assert info.distortion_model == 'plumb_bob' and not info.d.any()
        np.testing.assert_array_equal(info.k, [45.0, 0.0, 31.0, 0.0, 45.0, 22.0, 0.0, 0.0, 1.0])
        np.testing.assert_array_equal(info.p, P)


def test_images_with_rectify_give_the_depth_of_the_bag_on_the_same_frames(tmp_path, model_path, capsys):
    """rectify: true in the params file: `images` rectifies each file with the calibration file's K, D, R, P, as
    `bag` does each message with its camera_info, so the same frames and calibration give the same depth (16UC1
    millimetres in the bag, the images tool's depth PNG encoding). `images` ignored rectify and wrote the depth
    of the raw frames."""
    frames = textured_frames(2)
    bag = write_bag(tmp_path / 'in', frames, calibration=lambda i: {'d': D, 'p': P})
    folder = tmp_path / 'images'
    folder.mkdir()
    for frame in frames:
        cv2.imwrite(str(folder / f'{frame.name}.png'), cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))
    calibration = camera_yaml(tmp_path / 'camera.yaml', WIDTH, HEIGHT, k=K, d=D, p=P)
    params = params_file(tmp_path, **{'rectify: false': 'rectify: true',
                                      'depth_encoding: 32FC1': 'depth_encoding: 16UC1'})
    code, _, err = run('bag', bag, tmp_path / 'bag_out', '--model', model_path, '--params-file', params, '--quiet',
                       capsys=capsys)
    assert code == 0, err
    code, out, err = run('images', folder, tmp_path / 'images_out', '--model', model_path, '--camera-info',
                         calibration, '--params-file', params, '--quiet', capsys=capsys)
    assert code == 0 and 'written: 2, skipped: 0' in out, err
    _, messages = read_bag(tmp_path / 'bag_out')
    for (_, depth), frame in zip(messages['/camera/depth'], frames, strict=True):
        written = cv2.imread(str(tmp_path / 'images_out' / 'depth' / f'{frame.name}.png'), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(written, depth_image(depth))


def test_images_with_rectify_refuse_a_calibration_file_they_cannot_rectify_with(tmp_path, model_path, capsys):
    """With rectify on, a calibration file whose distortion model rectification does not know is refused at start
    with one line naming the file, as one with a zero focal length is, before any frame is read."""
    folder = tmp_path / 'images'
    folder.mkdir()
    cv2.imwrite(str(folder / 'a.png'), textured_frames(1)[0].rgb)
    calibration = camera_yaml(tmp_path / 'camera.yaml', WIDTH, HEIGHT, k=K, d=[0.1], p=P, distortion_model='fov')
    params = params_file(tmp_path, **{'rectify: false': 'rectify: true'})
    code, _, err = run('images', folder, tmp_path / 'out', '--model', model_path, '--camera-info', calibration,
                       '--params-file', params, '--quiet', capsys=capsys)
    assert_clean_error(code, err, str(calibration), 'fov')
    assert not (tmp_path / 'out').exists()


def test_16uc1_depth_is_the_32fc1_depth_in_rounded_millimetres(tmp_path, capsys):
    """depth_encoding: 16UC1 writes uint16 millimetres (REP 118): round(1000 * z) of the 32FC1 run's depth, 0 where
    that is NaN (the model's depth <= 0) or beyond uint16 (over 65.535 m); the other topics stay 32FC1 metres."""
    model = build_synthetic_onnx(str(tmp_path / 'wide_range.onnx'), base=-1.0, gain=80.0, std_ratio=0.1,
                                 max_depth=80.0)  # depth -1 .. 79 m over the grey levels: both kinds of invalid
    bag = write_bag(tmp_path / 'in', textured_frames(2))
    outputs = {}
    for encoding in ('32FC1', '16UC1'):
        params = params_file(tmp_path, **{'depth_encoding: 32FC1': f'depth_encoding: {encoding}'})
        code, _, err = run('bag', bag, tmp_path / encoding, '--model', model, '--params-file', params, '--quiet',
                           capsys=capsys)
        assert code == 0, err
        outputs[encoding] = read_bag(tmp_path / encoding)[1]
    for (_, metres), (_, millimetres) in zip(outputs['32FC1']['/camera/depth'], outputs['16UC1']['/camera/depth'],
                                             strict=True):
        assert (millimetres.encoding, millimetres.step) == ('16UC1', 2 * WIDTH)
        z, mm = depth_image(metres), depth_image(millimetres)
        rounded = np.rint(z.astype(np.float64) * 1000.0)
        valid = np.isfinite(z) & (rounded <= 65535)
        assert (~np.isfinite(z)).any() and (rounded > 65535).any() and valid.any()  # all three cases present
        np.testing.assert_array_equal(mm[valid], rounded[valid])
        assert not mm[~valid].any()
    for topic in ('/camera/depth/uncertainty',):
        assert all(m.encoding == '32FC1' for _, m in outputs['16UC1'][topic])
