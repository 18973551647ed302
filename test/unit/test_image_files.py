"""depth_kd_ros.io.image_files: the one image-folder lister (offline images, ground truth, INT8 calibration)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from depth_kd_ros.io.image_codec import ImageDecodeError
from depth_kd_ros.io.image_files import ImageFolderError, list_images, read_image


def test_lists_every_format_opencv_reads_sorted_by_name_and_nothing_else(tmp_path):
    """Suffixes in any case, name order, subfolders and other files ignored: the offline tool listed only
    PNG/JPEG while calibration took BMP, TIFF, WebP too."""
    for name in ('b.PNG', 'a.jpg', 'c.bmp', 'd.tiff', 'e.webp'):
        cv2.imwrite(str(tmp_path / name.lower()), np.zeros((2, 2, 3), np.uint8))
        (tmp_path / name.lower()).rename(tmp_path / name)
    (tmp_path / 'notes.txt').write_text('x')
    (tmp_path / 'sub.png').mkdir()
    assert [p.name for p in list_images(tmp_path)] == ['a.jpg', 'b.PNG', 'c.bmp', 'd.tiff', 'e.webp']
    assert [p.name for p in list_images(tmp_path, ('.png',))] == ['b.PNG']


def test_missing_or_empty_folder_is_named(tmp_path):
    """The error names the folder and what was looked for."""
    with pytest.raises(ImageFolderError, match='does not exist'):
        list_images(tmp_path / 'nope')
    (tmp_path / 'notes.txt').write_text('x')
    with pytest.raises(ImageFolderError, match=r'holds no images \(looked for .png'):
        list_images(tmp_path)


def test_read_image_is_rgb_and_refuses_a_truncated_file(tmp_path):
    """Files go through the node's decoder: RGB order, and a JPEG without its end is corrupt, not grey."""
    bgr = np.zeros((8, 8, 3), np.uint8)
    bgr[..., 2] = 200  # red in OpenCV's BGR
    cv2.imwrite(str(tmp_path / 'red.png'), bgr)
    assert read_image(tmp_path / 'red.png')[0, 0].tolist() == [200, 0, 0]
    ok, jpeg = cv2.imencode('.jpg', bgr)
    (tmp_path / 'cut.jpg').write_bytes(jpeg.tobytes()[:-20])
    with pytest.raises(ImageDecodeError):
        read_image(tmp_path / 'cut.jpg')
