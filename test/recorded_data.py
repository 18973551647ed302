"""Recordings as robots and cameras leave them, made from what rosbags and OpenCV write by editing the files: a bag
whose metadata.yaml is edited or of an older ROS 2, splits compressed file by file, an MCAP without its index or
cut short; a JPEG with an EXIF orientation, as phones write them.

Sources: rosbag2's metadata versions (rosbag2_storage metadata_io.cpp: v5 Humble, v6 custom_data, v7
type_description_hash on Iron, v8 ros_distro, v9 Jazzy's QoS as a list), Humble's sqlite3 schema 3
(sqlite_storage.cpp: no message_definitions table, no type_description_hash), rosbag2's splits
``<bag>_<n>.<suffix>`` and file compression (``<file>.zstd``, sequential_compression_writer.cpp), and the MCAP
layout (mcap.dev/spec: records ``opcode (uint8), length (uint64 LE), content``; the ``fastwrite`` preset writes
no chunks, so no message index); EXIF (CIPA DC-008: an APP1 segment ``Exif\0\0`` + a TIFF structure whose IFD0
tag 0x0112 is the orientation).
"""
from __future__ import annotations

import shutil
import sqlite3
import struct
from collections.abc import Callable
from pathlib import Path

import yaml

try:  # the zstd module rosbags compresses with: the standard library's from Python 3.14, its backport before
    from compression import zstd
except ImportError:
    from backports import zstd

MAGIC = b'\x89MCAP0\r\n'
RECORD = struct.Struct('<BQ')
#: offered QoS as Humble's recorder writes it (durability 1: transient_local, what people set to latch camera_info)
LATCHED = ('- history: 1\n  depth: 1\n  reliability: 1\n  durability: 1\n  deadline:\n    sec: 9223372036\n'
           '    nsec: 854775807\n  lifespan:\n    sec: 9223372036\n    nsec: 854775807\n  liveliness: 1\n'
           '  liveliness_lease_duration:\n    sec: 9223372036\n    nsec: 854775807\n'
           '  avoid_ros_namespace_conventions: false')
HEADER, FOOTER, SCHEMA, CHANNEL, MESSAGE, CHUNK, MESSAGE_INDEX, STATISTICS, DATA_END = \
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x0B, 0x0F


def metadata(bag: Path) -> dict:
    """metadata.yaml's rosbag2_bagfile_information."""
    return yaml.safe_load((bag / 'metadata.yaml').read_text())['rosbag2_bagfile_information']


def edit_metadata(bag: Path, edit: Callable[[dict], None]) -> None:
    """Apply ``edit`` to metadata.yaml's rosbag2_bagfile_information (as a person or a tool rewrites it)."""
    path = bag / 'metadata.yaml'
    document = yaml.safe_load(path.read_text())
    edit(document['rosbag2_bagfile_information'])
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def topic_entry(info: dict, topic: str) -> dict:
    """The topics_with_message_count entry of ``topic``."""
    return next(t for t in info['topics_with_message_count'] if t['topic_metadata']['name'] == topic)


def as_version(bag: Path, version: int) -> Path:
    """A version 8 bag that rosbags wrote, turned into one of an older rosbag2: 7 (Iron: no ros_distro) or 5
    (Humble: no custom_data, no type_description_hash, and its sqlite3 storage in schema 3)."""
    def edit(info: dict) -> None:
        info['version'] = version
        info.pop('ros_distro', None)
        if version < 7:
            info.pop('custom_data', None)
            for topic in info['topics_with_message_count']:
                topic['topic_metadata'].pop('type_description_hash', None)
    edit_metadata(bag, edit)
    for database in bag.glob('*.db3'):
        if version < 7:
            with sqlite3.connect(database) as connection:
                connection.executescript('DROP TABLE message_definitions; DROP TABLE metadata; '
                                         'ALTER TABLE topics DROP COLUMN type_description_hash; '
                                         'UPDATE schema SET schema_version = 3;')
            connection.close()
    return bag


def join_splits(parts: list[Path], bag: Path, *, compress: bool) -> Path:
    """One rosbag2 at ``bag`` whose splits are the storage files of ``parts`` (bags of one storage and the same
    topics, each later than the one before), named ``<bag>_<n>.<suffix>`` and, with ``compress``, compressed whole
    with zstd as rosbag2's file-mode compression does; metadata.yaml lists them and sums their counts."""
    bag.mkdir()
    infos = [metadata(part) for part in parts]
    merged = infos[0]
    files, counts = [], {}
    for number, (part, info) in enumerate(zip(parts, infos, strict=True)):
        source = part / info['relative_file_paths'][0]
        name = f'{bag.name}_{number}{source.suffix}'
        if compress:
            name += '.zstd'
            with source.open('rb') as plain, zstd.open(bag / name, 'wb') as packed:
                shutil.copyfileobj(plain, packed)
        else:
            shutil.copyfile(source, bag / name)
        files.append({'path': name, 'starting_time': dict(info['starting_time']),
                      'duration': dict(info['duration']), 'message_count': info['message_count']})
        for topic in info['topics_with_message_count']:
            name_ = topic['topic_metadata']['name']
            counts[name_] = counts.get(name_, 0) + topic['message_count']
    start = infos[0]['starting_time']['nanoseconds_since_epoch']
    end = infos[-1]['starting_time']['nanoseconds_since_epoch'] + infos[-1]['duration']['nanoseconds']
    merged.update(relative_file_paths=[f['path'] for f in files], files=files,
                  message_count=sum(i['message_count'] for i in infos),
                  duration={'nanoseconds': end - start},
                  compression_format='zstd' if compress else '', compression_mode='FILE' if compress else '')
    for topic in merged['topics_with_message_count']:
        topic['message_count'] = counts[topic['topic_metadata']['name']]
    (bag / 'metadata.yaml').write_text(yaml.safe_dump({'rosbag2_bagfile_information': merged}, sort_keys=False))
    return bag


def mcap_records(data: bytes, start: int = len(MAGIC)):
    """``(opcode, offset, content)`` of the records of an MCAP file's bytes (or a chunk's, from ``start`` 0)."""
    offset = start
    while offset + RECORD.size <= len(data):
        opcode, length = RECORD.unpack_from(data, offset)
        if opcode == 0x89:  # the closing magic
            return
        yield opcode, offset, data[offset + RECORD.size:offset + RECORD.size + length]
        offset += RECORD.size + length


def _record(opcode: int, content: bytes) -> bytes:
    return RECORD.pack(opcode, len(content)) + content


def unindexed_mcap(mcap: Path) -> None:
    """Rewrite an MCAP file that rosbags wrote (uncompressed chunks) as the ``fastwrite`` preset writes one: its
    records unchunked in the data section, in file order, no chunk or message index; the summary keeps schemas,
    channels and statistics."""
    data = mcap.read_bytes()
    output, summary = bytearray(MAGIC), bytearray()
    in_summary = False
    for opcode, _, content in mcap_records(data):
        if opcode == HEADER:
            output += _record(opcode, content)
        elif opcode == CHUNK and not in_summary:
            (compression,) = struct.unpack_from('<I', content, 28)
            assert compression == 0, 'unindexed_mcap expects uncompressed chunks'
            records = content[32 + 8:]
            output += b''.join(_record(op, body) for op, _, body in mcap_records(records, 0))
        elif opcode == DATA_END:
            output += _record(DATA_END, bytes(4))
            in_summary = True
        elif in_summary and opcode in (SCHEMA, CHANNEL):
            summary += _record(opcode, content)
        elif in_summary and opcode == STATISTICS:
            statistics = bytearray(content)
            statistics[22:26] = bytes(4)  # no chunks
            summary += _record(opcode, bytes(statistics))
    summary_start = len(output)
    output += summary + _record(FOOTER, struct.pack('<QQI', summary_start, 0, 0)) + MAGIC
    mcap.write_bytes(bytes(output))


def cut_mcap(mcap: Path, chunk: int) -> tuple[int, int]:
    """Cut an MCAP file in the middle of its ``chunk``-th chunk record (a recorder killed while writing it): no
    footer, no summary. Returns (bytes kept, where the chunk started)."""
    data = mcap.read_bytes()
    start, content = [(offset, body) for opcode, offset, body in mcap_records(data) if opcode == CHUNK][chunk]
    keep = start + RECORD.size + len(content) // 2
    mcap.write_bytes(data[:keep])
    return keep, start


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """``jpeg`` with an APP1 EXIF segment after SOI whose IFD0 holds only the Orientation tag (1-8), as a phone
    writes it beside the sensor's pixels."""
    tiff = b'II*\x00' + struct.pack('<IHHHIHHI', 8, 1, 0x0112, 3, 1, orientation, 0, 0)
    app1 = b'Exif\x00\x00' + tiff
    return jpeg[:2] + b'\xff\xe1' + struct.pack('>H', len(app1) + 2) + app1 + jpeg[2:]
