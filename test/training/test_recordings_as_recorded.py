"""Training's recordings reader (disdepth.data.recordings) on recordings as robots leave them: the bags of
test/recorded_data.py (metadata.yaml edited, an unindexed MCAP with depth out of order, an MCAP cut short,
splits compressed file by file, older rosbag2 versions), and an image folder of EXIF-rotated JPEGs with depth
PNGs. Recordings are written by scripts/synthetic_recording.py at 48x64 with 16UC1 depth 2 ms after colour."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from recorded_data import (
    LATCHED,
    as_version,
    cut_mcap,
    edit_metadata,
    join_splits,
    topic_entry,
    unindexed_mcap,
    with_exif_orientation,
)
from recording_script import SCRIPT

from disdepth.config import config_from_dict
from disdepth.data.recordings import ReadReport, read_recording
from disdepth.data.splits import DatasetError

RGB_TOPIC, INFO_TOPIC = '/camera/color/image_raw', '/camera/color/camera_info'
DEPTH_TOPIC = '/camera/aligned_depth_to_color/image_raw'
FRAMES, HEIGHT, WIDTH = 8, 48, 64


def record(path: Path, **options) -> Path:
    return SCRIPT.write_recording(path, **{'frames': FRAMES, 'height': HEIGHT, 'width': WIDTH, **options})


def read(path: Path, **data) -> tuple[list, ReadReport]:
    """Every kept frame of ``path`` (all: test_fraction 0) and the reader's report."""
    cfg = config_from_dict({'data': {'dataset': 'recordings', 'recordings': [str(path)], 'image_topic': RGB_TOPIC,
                                     'depth_topic': DEPTH_TOPIC, 'test_fraction': 0.0, **data}}).data
    report = ReadReport()
    return list(read_recording(path, cfg, report)), report


def test_camera_info_latched_in_an_edited_metadata_yaml_is_read(tmp_path):
    """metadata.yaml's offered QoS of camera_info edited: rosbags read none of it and training stopped with 'has no
    message', although `ros2 bag info` counts them all."""
    bag = record(tmp_path / 'walk')
    edit_metadata(bag, lambda info: topic_entry(info, INFO_TOPIC)['topic_metadata'].update(
        offered_qos_profiles=LATCHED))
    frames, _ = read(bag)
    assert len(frames) == FRAMES and all(f.depth is not None for f in frames)


def test_metadata_listing_more_depth_than_stored_stops_with_both_counts(tmp_path):
    bag = record(tmp_path / 'walk')
    edit_metadata(bag, lambda info: topic_entry(info, DEPTH_TOPIC).update(message_count=FRAMES + 2))
    with pytest.raises(DatasetError, match=f'{DEPTH_TOPIC} has {FRAMES} messages .* metadata.yaml lists '
                                           f'{FRAMES + 2}.*ros2 bag reindex'):
        read(bag)


def test_unindexed_mcap_with_depth_out_of_order_reads_colour_and_depth_together(tmp_path):
    """The `fastwrite` preset with each depth image stamped 6 ms before its colour frame and received 3 ms before it,
    but written after it: colour and depth are read together in file order, as rosbag2 reads them. rosbags stopped
    in mid-read ('Unindexed MCAP messages are not in timestamp order')."""
    bag = record(tmp_path / 'walk', storage='mcap', depth_offset_ms=-6.0)
    unindexed_mcap(bag / 'walk.mcap')
    frames, report = read(bag)
    assert len(frames) == FRAMES and not report.without_depth


def test_cut_short_mcap_trains_on_its_complete_chunks(tmp_path):
    """A recording whose recorder was killed in its second chunk, left without metadata.yaml: the frames of the
    complete chunk are read and the report says where the file ends; rosbags refused it."""
    bag = record(tmp_path / 'walk', storage='mcap', frames=24, height=120, width=160)  # 3 chunks
    (bag / 'metadata.yaml').unlink()
    kept, complete = cut_mcap(bag / 'walk.mcap', chunk=1)
    frames, report = read(bag)
    assert 0 < len(frames) < 24 and all(f.depth is not None for f in frames)
    assert any(f'the first {complete} of its {kept} bytes' in note for note in report.notes)


def test_file_compressed_splits_and_older_metadata_read(tmp_path, monkeypatch):
    """Splits compressed file by file (zstd), and a Humble bag (metadata v5, sqlite3 schema 3), read whole."""
    parts = []
    for n in range(2):  # the second split recorded after the first
        monkeypatch.setattr(SCRIPT, 'START_NS', SCRIPT.START_NS + n * FRAMES * 100_000_000)
        parts.append(record(tmp_path / f'part{n}', seed=n))
    bag = join_splits(parts, tmp_path / 'walk', compress=True)
    frames, _ = read(bag)
    assert len(frames) == 2 * FRAMES
    humble = as_version(shutil.copytree(parts[0], tmp_path / 'humble'), 5)
    assert len(read(humble)[0]) == FRAMES


@pytest.mark.parametrize('orientation', [3, 6])
def test_exif_rotated_jpegs_stay_registered_with_their_depth(tmp_path, orientation):
    """An image folder of JPEGs that carry an EXIF orientation (180 degrees, 90 degrees) with depth PNGs of the same
    stored pixels: each frame is its stored pixels, registered with its depth and calibration, and the report names
    the files. OpenCV's colour read turned the JPEG (silently against its depth at 180 degrees; at 90 degrees the
    folder was refused as another camera's size)."""
    folder = record(tmp_path / 'walk', storage='folder', frames=2)
    for path in sorted((folder / 'rgb').iterdir()):
        jpeg = cv2.imencode('.jpg', cv2.imread(str(path)), [cv2.IMWRITE_JPEG_QUALITY, 100])[1].tobytes()
        path.with_suffix('.jpg').write_bytes(with_exif_orientation(jpeg, orientation))
        path.unlink()
    frames, report = read(folder)
    for frame in frames:
        stored = cv2.imdecode(np.fromfile(folder / 'rgb' / frame.name, np.uint8), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(frame.rgb, stored[..., ::-1])
        assert frame.depth.shape == frame.rgb.shape[:2] == (HEIGHT, WIDTH)
    assert any('2 images carry an EXIF orientation, not applied (000000.jpg, 000001.jpg)' in n for n in report.notes)
