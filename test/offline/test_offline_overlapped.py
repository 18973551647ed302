"""The overlapped tool (reading, inference and writing on three threads, depth_kd_ros/offline/overlapped.py) writes the
very bytes of its stages run one after another, in the same order, also when the writer is the slow stage."""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import pytest
from offline_helpers import camera_yaml, run, synthetic_frames, write_bag

from depth_kd_ros.io.bagio import BagWriter
from depth_kd_ros.offline import bag as offline_bag
from depth_kd_ros.offline import images as offline_images
from depth_kd_ros.offline.overlapped import Sequential


def slowed(function, seconds: float = 0.003):
    def wrapped(*args, **kwargs):
        time.sleep(seconds)
        return function(*args, **kwargs)
    return wrapped


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob('*')) if p.is_file()}


@pytest.mark.parametrize('mode', ['bag_sqlite3_copy_inputs', 'bag_mcap_compressed', 'images_ply'])
def test_same_bytes_as_the_stages_one_after_another_with_a_slow_writer(tmp_path, model_path, monkeypatch, mode,
                                                                        capsys):
    """8 frames, one of them corrupt (skipped and named, the run goes on), the writer slowed so that the queues
    fill: every output file equals, byte for byte, the one of the sequential run, and so do the summaries."""
    frames = synthetic_frames(8, height=48, width=64)
    if mode.startswith('bag'):
        compressed = 'compressed' in mode
        bag = write_bag(tmp_path / 'in', frames, storage='mcap' if 'mcap' in mode else 'sqlite3', compressed=compressed,
                        image_format='jpeg', corrupt=(3,) if compressed else ())
        argv = ['bag', bag, '--copy-inputs'] if 'copy_inputs' in mode else ['bag', bag]
        monkeypatch.setattr(BagWriter, 'write', slowed(BagWriter.write))
    else:
        folder = tmp_path / 'in'
        folder.mkdir()
        for i, frame in enumerate(frames):
            cv2.imwrite(str(folder / f'{i:02d}.png'), cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))
        (folder / '03.png').write_bytes(b'not a png')
        argv = ['images', folder, '--camera-info', camera_yaml(tmp_path / 'camera.yaml', 64, 48), '--ply']
        monkeypatch.setattr(cv2, 'imwrite', slowed(cv2.imwrite))
    summaries = {}
    for name in ('overlapped', 'sequential'):
        with monkeypatch.context() as patch:
            if name == 'sequential':
                for module in (offline_bag, offline_images):
                    patch.setattr(module, 'Overlapped', Sequential)
            code, out, err = run(argv[0], argv[1], tmp_path / name / 'out', *argv[2:], '--model', model_path,
                                 '--quiet', capsys=capsys)
        assert code == 0, err
        summaries[name] = [line for line in out.splitlines() if 'frames/s' not in line and 'wrote' not in line]
    assert summaries['overlapped'] == summaries['sequential']
    assert ('skipped 1' in '\n'.join(summaries['overlapped'])) == (mode != 'bag_sqlite3_copy_inputs')
    overlapped, sequential = files_of(tmp_path / 'overlapped'), files_of(tmp_path / 'sequential')
    assert overlapped.keys() == sequential.keys()
    for name, data in overlapped.items():
        assert data == sequential[name], name
