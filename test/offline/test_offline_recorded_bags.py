"""`mono_depth_offline bag` on bags as robots write them: metadata.yaml edited, splits compressed file by file, an
MCAP cut short or written without an index, a bare compressed split, and the rosbag2 versions and modes that
already read (kept so). Each bag is one that rosbags writes, edited as test/recorded_data.py says."""
from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from offline_helpers import assert_clean_error, file_size_limit, read_bag, run, stamp_of, synthetic_frames, write_bag
from recorded_data import LATCHED, as_version, cut_mcap, edit_metadata, join_splits, topic_entry, unindexed_mcap
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from depth_kd_ros.io.bagio import BAG_VERSION, COMPRESSED_IMAGE, TYPESTORE, BagWriter

ROOT = Path(__file__).resolve().parents[2]
SUFFIX = {'sqlite3': '.db3', 'mcap': '.mcap'}


def written(out: str) -> int:
    return int(re.search(r'written: (\d+)', out).group(1))


def split_bag(tmp_path: Path, storage: str, *, compress: bool, splits: int = 3, per_split: int = 3) -> Path:
    """A bag of ``splits`` splits of ``per_split`` frames each (60x80, camera_info with each)."""
    frames = synthetic_frames(splits * per_split)
    parts = [write_bag(tmp_path / f'part{n}', frames[n * per_split:(n + 1) * per_split], storage=storage,
                       first=n * per_split) for n in range(splits)]
    return join_splits(parts, tmp_path / 'in', compress=compress)


# Bags as robots write them

@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_camera_info_latched_in_an_edited_metadata_yaml_is_still_read(tmp_path, model_path, capsys, storage):
    """metadata.yaml's offered QoS of camera_info edited to transient_local (to latch it on playback): rosbags read a
    topic only while that QoS equalled the storage's, so it yielded no camera_info without a word and the tool wrote
    unscaled depth without points, exit 0. The storage's own topic table decides now."""
    bag = write_bag(tmp_path / 'in', synthetic_frames(3), storage=storage)
    edit_metadata(bag, lambda info: topic_entry(info, '/camera/camera_info')['topic_metadata'].update(
        offered_qos_profiles=LATCHED))
    code, out, _ = run('bag', bag, tmp_path / 'out', '--model', model_path, '--quiet', capsys=capsys)
    assert code == 0 and written(out) == 3 and 'no camera_info' not in out
    messages = read_bag(tmp_path / 'out')[1]
    assert len(messages['/camera/points']) == len(messages['/camera/depth/camera_info']) == 3


def test_metadata_listing_more_messages_than_stored_stops_with_both_counts(tmp_path, model_path, capsys):
    """metadata.yaml that lists more camera_infos than the storage holds (another recording's, or edited) is one line
    naming the topic, both counts and `ros2 bag reindex`; the short count went unnoticed."""
    bag = write_bag(tmp_path / 'in', synthetic_frames(3))
    edit_metadata(bag, lambda info: topic_entry(info, '/camera/camera_info').update(message_count=5))
    code, _, err = run('bag', bag, tmp_path / 'out', '--model', model_path, '--quiet', capsys=capsys)
    assert_clean_error(code, err, '/camera/camera_info has 3 messages', 'metadata.yaml lists 5', 'ros2 bag reindex')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in']


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_file_compressed_splits_are_decompressed_one_at_a_time(tmp_path, model_path, capsys, monkeypatch, storage):
    """Three zstd file-compressed splits: at most one is decompressed in TMPDIR at any time (every one used to be
    decompressed there before the first frame), and every frame of every split is written."""
    bag = split_bag(tmp_path, storage, compress=True)
    temporary = tmp_path / 'tmp'
    temporary.mkdir()
    monkeypatch.setenv('TMPDIR', str(temporary))
    monkeypatch.setattr(tempfile, 'tempdir', None)  # gettempdir() reads TMPDIR again
    decompressed_while_writing = []
    original = BagWriter.write

    def decompressed() -> int:
        while True:
            try:
                return len(list(temporary.rglob(f'*{SUFFIX[storage]}')))
            except FileNotFoundError:  # the reader thread deleted a split's folder while rglob walked it
                continue

    def write(self, *args, **kwargs):
        decompressed_while_writing.append(decompressed())
        return original(self, *args, **kwargs)
    monkeypatch.setattr(BagWriter, 'write', write)
    code, out, err = run('bag', bag, tmp_path / 'out', '--model', model_path, '--quiet', capsys=capsys)
    assert code == 0 and written(out) == 9, err
    assert max(decompressed_while_writing) == 1
    depth = read_bag(tmp_path / 'out')[1]['/camera/depth']
    assert [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for _, m in depth] == [stamp_of(i) for i in range(9)]
    assert not list(temporary.rglob(f'*{SUFFIX[storage]}'))


def test_no_room_to_decompress_a_split_is_named_with_the_room_it_needs(tmp_path, model_path):
    """A full TMPDIR (here a file-size limit: the same failing write) while decompressing a split: one line saying
    so, with the split, the room it needs and TMPDIR; it used to say 'not a readable rosbag2'."""
    bag = split_bag(tmp_path, 'sqlite3', compress=True)
    script = Path(sys.executable).with_name('mono_depth_offline')
    result = subprocess.run([str(script), 'bag', str(bag), str(tmp_path / 'out'), '--model', str(model_path),
                             '--quiet'], capture_output=True, text=True, check=False, cwd=ROOT,
                            preexec_fn=file_size_limit(20_000))
    assert_clean_error(result.returncode, result.stderr, 'no room to decompress', 'in_0.db3.zstd',
                       'the split needs more than the 20 kB written', 'set TMPDIR')
    assert 'not a readable' not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in', 'part0', 'part1', 'part2']


@pytest.mark.parametrize('layout', ['bare_file', 'unclosed_folder'])
def test_cut_short_mcap_gives_its_complete_chunks_and_says_where_it_ends(tmp_path, model_path, capsys, layout):
    """An MCAP whose recorder was killed in its second chunk (no footer; a folder left without metadata.yaml): the
    frames of the complete first chunk are written and the summary says where the file was cut. rosbags refused the
    file ('File end magic is invalid'), and a folder without metadata.yaml."""
    bag = write_bag(tmp_path / 'in', synthetic_frames(8, height=240, width=320), storage='mcap')  # 5 per chunk
    (bag / 'metadata.yaml').unlink()
    kept, complete = cut_mcap(bag / 'in.mcap', chunk=1)
    code, out, _ = run('bag', bag / 'in.mcap' if layout == 'bare_file' else bag, tmp_path / 'out', '--model',
                       model_path, '--quiet', capsys=capsys)
    assert code == 0 and written(out) == 5
    assert 'was cut short (no MCAP footer' in out and f'the first {complete} of its {kept} bytes' in out
    if layout == 'unclosed_folder':
        assert 'has no metadata.yaml (the recording was not closed)' in out
    assert len(read_bag(tmp_path / 'out')[1]['/camera/depth']) == 5


def test_mcap_cut_before_its_first_chunk_is_complete_is_one_line(tmp_path, model_path, capsys):
    """Nothing complete to read: one line naming the truncation and `mcap recover`."""
    bag = write_bag(tmp_path / 'in', synthetic_frames(3), storage='mcap')
    cut_mcap(bag / 'in.mcap', chunk=0)
    code, _, err = run('bag', bag / 'in.mcap', tmp_path / 'out', '--model', model_path, '--quiet', capsys=capsys)
    assert_clean_error(code, err, 'in.mcap was cut short', 'before its first complete chunk', 'mcap recover')


def test_unindexed_mcap_with_topics_out_of_order_reads_image_and_camera_info_together(tmp_path, model_path,
                                                                                       capsys):
    """The `fastwrite` preset (no chunks, no index) with each camera_info written before its image but received 1 ms
    after it: --copy-inputs reads both topics in file order, as rosbag2 does. rosbags stopped mid-run ('Unindexed
    MCAP messages are not in timestamp order')."""
    bag = write_bag(tmp_path / 'in', synthetic_frames(4), storage='mcap', info_ahead=1_000_000)
    unindexed_mcap(bag / 'in.mcap')
    code, out, _ = run('bag', bag, tmp_path / 'out', '--model', model_path, '--copy-inputs', '--quiet', capsys=capsys)
    assert code == 0 and written(out) == 4
    messages = read_bag(tmp_path / 'out')[1]
    assert len(messages['/camera/camera_info']) == len(messages['/camera/depth']) == 4


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
@pytest.mark.parametrize('beside', [True, False], ids=['in_its_folder', 'alone'])
def test_bare_compressed_split_says_what_it_is_and_what_to_pass(tmp_path, model_path, capsys, storage, beside):
    """A `.db3.zstd` / `.mcap.zstd` given as INPUT: one line saying it is one file of a file-compressed bag, and
    to pass its folder (or, alone, to decompress it); it was 'Unrecognized storage format'."""
    bag = write_bag(tmp_path / 'bag', synthetic_frames(1), storage=storage, compression='file')
    split = bag / f'bag{SUFFIX[storage]}.zstd'
    if not beside:
        split = split.rename(tmp_path / split.name)
    code, _, err = run('bag', split, tmp_path / 'out', '--model', model_path, capsys=capsys)
    advice = f'pass its bag folder {bag}' if beside else f'zstd -d {split}'
    assert_clean_error(code, err, f'{split} is one storage file of a rosbag2 compressed file by file (zstd)', advice)


# Keep what works: rosbag2 versions and modes that robots record, and the output Humble plays

CASES = {
    'humble_v5': {'version': 5}, 'iron_v7': {'version': 7}, 'jazzy_v9': {'version': 9},
    'zstd_message': {'compression': 'message'}, 'zstd_file': {'compression': 'file'},
    'zstd_file_splits': {'splits': True}, 'bare_file': {'bare': True},
}


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
@pytest.mark.parametrize('case', CASES)
def test_versions_and_modes_robots_record_read(tmp_path, model_path, capsys, case, storage):
    """Humble (metadata v5, sqlite3 schema 3), Iron (v7) and Jazzy (v9) metadata, message- and file-mode zstd (one
    file and splits), and a bare storage file: every frame written, each with its camera_info."""
    options = CASES[case]
    if options.get('splits'):
        bag = split_bag(tmp_path, storage, compress=True, splits=2, per_split=2)
    else:
        bag = write_bag(tmp_path / 'in', synthetic_frames(4), storage=storage, version=9 if case == 'jazzy_v9' else 8,
                        compression=options.get('compression', ''))
        if options.get('version') in (5, 7):
            as_version(bag, options['version'])
        if options.get('bare'):
            bag = bag / f'in{SUFFIX[storage]}'
    code, out, _ = run('bag', bag, tmp_path / 'out', '--model', model_path, '--quiet', capsys=capsys)
    assert code == 0 and written(out) == 4, out
    assert len(read_bag(tmp_path / 'out')[1]['/camera/points']) == 4


def _humble_decodes(info: dict) -> None:
    """Humble's rosbag2 metadata reader (rosbag2_storage metadata_io.cpp, branch humble) on metadata.yaml: the keys
    it reads, with the types yaml-cpp converts them to; and its player's QoS reader (rosbag2_transport qos.cpp) on
    each offered_qos_profiles, a YAML string whose policies are integers (version 9 writes a list of names, which
    Humble's `as<std::string>()` fails on)."""
    assert isinstance(info['version'], int) and info['version'] >= 5
    assert isinstance(info['storage_identifier'], str)
    for key, field in (('duration', 'nanoseconds'), ('starting_time', 'nanoseconds_since_epoch')):
        assert isinstance(info[key][field], int)
    assert isinstance(info['message_count'], int)
    assert all(isinstance(path, str) for path in info['relative_file_paths'])
    assert isinstance(info['compression_format'], str) and isinstance(info['compression_mode'], str)
    for file in info['files']:
        assert isinstance(file['path'], str) and isinstance(file['message_count'], int)
        assert isinstance(file['starting_time']['nanoseconds_since_epoch'], int)
        assert isinstance(file['duration']['nanoseconds'], int)
    for topic in info['topics_with_message_count']:
        assert isinstance(topic['message_count'], int)
        metadata = topic['topic_metadata']
        assert all(isinstance(metadata[key], str) for key in ('name', 'type', 'serialization_format'))
        profiles = metadata['offered_qos_profiles']
        assert isinstance(profiles, str)
        for profile in yaml.safe_load(profiles) or []:
            assert all(isinstance(profile[key], int) for key in ('history', 'depth', 'reliability', 'durability',
                                                                  'liveliness'))


#: the queries Humble's sqlite3 storage reads a bag with (sqlite_storage.cpp, branch humble)
HUMBLE_QUERIES = (
    'SELECT schema_version FROM schema;',
    'SELECT name, type, serialization_format, offered_qos_profiles FROM topics ORDER BY id;',
    'SELECT data, timestamp, topics.name, messages.id FROM messages JOIN topics ON messages.topic_id = topics.id '
    'ORDER BY messages.timestamp;',
    'SELECT name, type, serialization_format, COUNT(messages.id), MIN(messages.timestamp), MAX(messages.timestamp), '
    'offered_qos_profiles FROM messages JOIN topics on topics.id = messages.topic_id GROUP BY topics.name;',
)


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_output_bag_reads_as_humble_reads_it(tmp_path, model_path, capsys, storage):
    """The output bag's metadata.yaml (version 8) decodes as Humble's rosbag2 decodes it, and its sqlite3 storage
    answers the queries Humble reads with, so `ros2 bag play` on Humble plays what the tool writes."""
    bag = write_bag(tmp_path / 'in', synthetic_frames(2), storage=storage)
    code, _, _ = run('bag', bag, tmp_path / 'out', '--model', model_path, '--copy-inputs', '--quiet', capsys=capsys)
    assert code == 0
    info = yaml.safe_load((tmp_path / 'out' / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    assert info['version'] == BAG_VERSION == 8
    _humble_decodes(info)
    if storage == 'sqlite3':
        with sqlite3.connect(tmp_path / 'out' / info['relative_file_paths'][0]) as connection:
            answers = [connection.execute(query).fetchall() for query in HUMBLE_QUERIES]
        connection.close()
        assert answers[0][0][0] >= 3 and len(answers[2]) == info['message_count']


# CompressedImage formats and video topics

def test_h264_compressed_images_stop_with_one_line_naming_the_format(tmp_path, model_path, capsys):
    """A bag of CompressedImage in 'h264' (Isaac ROS's encoder): one line naming the format and why; it said only
    that no frame could be processed."""
    bag = write_bag(tmp_path / 'in', synthetic_frames(2), compressed=True)
    edit = tmp_path / 'h264'
    with Writer(edit, version=8) as writer, AnyReader([bag], default_typestore=TYPESTORE) as reader:
        connections = {c.topic: writer.add_connection(c.topic, c.msgtype, typestore=TYPESTORE)
                       for c in reader.connections}
        for connection, timestamp, raw in reader.messages():
            message = reader.deserialize(raw, connection.msgtype)
            if connection.msgtype == COMPRESSED_IMAGE:
                message.format, message.data = 'h264', np.frombuffer(b'\x00\x00\x00\x01\x67\x42\x00\x1e', np.uint8)
            writer.write(connections[connection.topic], timestamp, TYPESTORE.serialize_cdr(message, connection.msgtype))
    code, _, err = run('bag', edit, tmp_path / 'out', '--model', model_path, '--quiet', capsys=capsys)
    assert_clean_error(code, err, 'no frame of /camera/image_raw/compressed could be processed',
                       "2 undecodable image (unsupported_format) (first: format 'h264': a video stream")


def test_video_topics_are_named_as_unsupported(tmp_path, model_path, capsys):
    """A bag whose camera was recorded through foxglove's video transport (foxglove_msgs/CompressedVideo): the
    error lists the video topic as unsupported, not 'the bag has 0 image topics' alone."""
    typestore = get_typestore(Stores.ROS2_JAZZY)
    typestore.register(get_types_from_msg('builtin_interfaces/Time timestamp\nstring frame_id\nuint8[] data\n'
                                          'string format', 'foxglove_msgs/msg/CompressedVideo'))
    with Writer(tmp_path / 'in', version=8) as writer:
        writer.add_connection('/camera/h264', 'foxglove_msgs/msg/CompressedVideo', typestore=typestore)
    code, _, err = run('bag', tmp_path / 'in', tmp_path / 'out', '--model', model_path, capsys=capsys)
    assert_clean_error(code, err, 'the bag has 0 image topics', 'video topics, which are not supported',
                       '/camera/h264 (foxglove_msgs/msg/CompressedVideo)')
