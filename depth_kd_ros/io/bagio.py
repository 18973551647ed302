"""Rosbag2 input and output (sqlite3 and MCAP, no ROS install) with ``rosbags``.

The bag side of ``mono_depth_offline bag`` and of training on recordings (docs/design.md sections 3-4): open and
recognise bags, choose the image and camera_info topics, read messages, write a new bag.
Topics follow image_transport: ``/cam/image_raw`` and ``/cam/image_raw/compressed`` have the base topic
``/cam/image_raw``, whose namespace ``/cam`` holds ``/cam/camera_info`` (and the offline tool's outputs).

A bag is read storage file by storage file, in the order metadata.yaml lists them, each with rosbags' reader of
one bare ``.db3`` / ``.mcap`` file; metadata.yaml gives the topics, their message counts, the time span and the
compression. Where robots' bags need it, this differs from rosbags' reader of a whole bag folder:

    file-mode zstd      each split (``*.db3.zstd``, ``*.mcap.zstd``) is decompressed into TMPDIR when its turn
                        comes and deleted after, as rosbag2's SequentialCompressionReader does (rosbags decompresses
                        every split before the first message): TMPDIR needs room for the largest split only
    message-mode zstd   each message decompressed as it is read, as rosbags does
    metadata.yaml QoS   not compared: rosbags reads a topic only while metadata.yaml's offered QoS equals the
                        storage file's, and yields none of its messages, without a word, once someone edited it
                        (to latch camera_info or /tf_static); the storage file's own topic table decides here
    message counts      a topic read to the end with fewer messages than metadata.yaml lists is a BagError that
                        names the topic and both counts: metadata.yaml does not describe these storage files
    no metadata.yaml    (a recording that was never closed) the folder's storage files in split-number order
    MCAP files          unindexed ones (the ``fastwrite`` preset) in file order, cut-short ones up to their last
                        complete chunk, said in ``notes`` (io/mcap_storage.py)
"""
from __future__ import annotations

import errno
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path, PurePath, PurePosixPath
from typing import NamedTuple

import yaml
from rosbags.highlevel import AnyReader
from rosbags.interfaces import Connection
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from depth_kd_ros.io.mcap_storage import McapStorage

try:  # the zstd module rosbags decompresses with: the standard library's from Python 3.14, its backport before
    from compression import zstd
except ImportError:
    from backports import zstd

#: message definitions for bags without embedded ones and for the output (sensor_msgs is the same in Humble)
TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
POINT_CLOUD2 = 'sensor_msgs/msg/PointCloud2'
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)
#: video transports' message types (foxglove's, ffmpeg_image_transport's, theora_image_transport's,
#: h264_image_transport's): streams of packets that depend on earlier ones, not images
VIDEO_TYPES = ('foxglove_msgs/msg/CompressedVideo', 'ffmpeg_image_transport_msgs/msg/FFMPEGPacket',
               'theora_image_transport/msg/Packet', 'h264_msgs/msg/Packet')
#: rosbag2 storage file suffix -> its storage plugin
STORAGES = {'.db3': StoragePlugin.SQLITE3, '.mcap': StoragePlugin.MCAP}
#: the suffix rosbag2's file-mode compression adds to each storage file
ZSTD_SUFFIX = '.zstd'
#: rosbag2 metadata version 8 (Jazzy's): Humble reads it (its offered_qos_profiles is a string, as Humble expects;
#: version 9 writes a list, which Humble cannot parse); rosbags writes only 8 or 9
BAG_VERSION = 8
#: decompressed split files are written in blocks of this size
COPY_BLOCK = 1 << 20


class BagError(ValueError):
    """The bag cannot be read (not a bag, truncated, corrupt, no room to decompress it) or lacks the topic asked
    for."""


class BagTopic(NamedTuple):
    """A topic of a bag with its message type and count (metadata.yaml's, else its storage files')."""

    topic: str
    msgtype: str
    msgcount: int


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _size(count: int) -> str:
    """A byte count for people: '2.4 GB', '310 MB', '64 kB'."""
    for unit, scale in (('GB', 1e9), ('MB', 1e6), ('kB', 1e3)):
        if count >= scale:
            return f'{count / scale:.3g} {unit}'
    return f'{count} B'


def _storage_suffix(file: Path) -> str:
    """'.db3' or '.mcap' for a storage file, compressed whole ('x_0.mcap.zstd') or not; '' for anything else."""
    suffix = PurePath(file.name.removesuffix(ZSTD_SUFFIX)).suffix
    return suffix if suffix in STORAGES else ''


def _split_order(file: Path) -> tuple[str, int]:
    """rosbag2 names splits ``<bag>_<n>.<suffix>``: sort them by n, not by text (``_10`` after ``_9``)."""
    stem = file.name.split('.', 1)[0]
    base, _, number = stem.rpartition('_')
    return (base, int(number)) if number.isdigit() else (stem, -1)


def is_bag(path: Path) -> bool:
    """A rosbag2: a storage file (STORAGES' suffixes, file-compressed or not), or a folder with metadata.yaml or
    such a file."""
    if path.is_file():
        return bool(_storage_suffix(path))
    return (path / 'metadata.yaml').is_file() or any(_storage_suffix(p) for p in path.iterdir())


class _Metadata(NamedTuple):
    """What this module reads of a metadata.yaml (rosbag2 metadata versions 1-9 name these keys alike)."""

    files: list[Path]
    compression: str  # '', 'file' or 'message'
    topics: list[BagTopic]
    start_time: int  # ns
    end_time: int  # ns, just after the last message


def _read_metadata(folder: Path) -> _Metadata:
    """metadata.yaml of a bag folder.

    Raises:
        BagError: unreadable, not rosbag2 metadata, a compression other than zstd, a storage file it lists missing.
    """
    path = folder / 'metadata.yaml'
    try:
        info = yaml.safe_load(path.read_text())['rosbag2_bagfile_information']
        files = [folder / PurePath(name).name for name in info['relative_file_paths']]
        mode = str(info.get('compression_mode') or '').lower()
        compression, method = ('' if mode == 'none' else mode), info.get('compression_format') or ''
        topics = [BagTopic(t['topic_metadata']['name'], t['topic_metadata']['type'], int(t['message_count']))
                  for t in info['topics_with_message_count']]
        start, duration = int(info['starting_time']['nanoseconds_since_epoch']), int(info['duration']['nanoseconds'])
        count = int(info['message_count'])
    except OSError as exc:
        raise BagError(f'cannot read {path}: {exc.strerror}') from exc
    except (yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BagError(f'{path} is not rosbag2 metadata: {_first_line(exc)}') from exc
    if compression not in ('', 'file', 'message') or (compression and method != 'zstd'):
        raise BagError(f'{path}: compression {method!r} in mode {mode!r} is not rosbag2\'s (zstd, file or message)')
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise BagError(f'{folder}: the storage files {", ".join(missing)} that metadata.yaml lists are missing')
    return _Metadata(files, compression, topics, start if count else 2**63 - 1, start + duration + 1 if count else 0)


def _compressed_file_error(path: Path) -> BagError:
    """A bare file-compressed split given as the input: what it is and what to pass instead."""
    folder = path.parent
    if (folder / 'metadata.yaml').is_file():
        instead = f'pass its bag folder {folder}, whose metadata.yaml says how to read it'
    else:
        instead = (f'pass the bag folder it came from (with its metadata.yaml), or decompress it (zstd -d {path}) '
                   f'and pass {path.name.removesuffix(ZSTD_SUFFIX)}')
    return BagError(f'{path} is one storage file of a rosbag2 compressed file by file (zstd), not a bag: {instead}')


@contextmanager
def _decompressed(file: Path) -> Iterator[Path]:
    """A file-compressed split decompressed into a temporary folder of TMPDIR, deleted on leaving.

    Raises:
        BagError: no room there (disk full, file size limit), named with the room the split needs; the file is
            not complete zstd.
    """
    with tempfile.TemporaryDirectory(prefix='depth_kd_ros-') as folder:
        target = Path(folder) / file.name.removesuffix(ZSTD_SUFFIX)
        with file.open('rb') as source:
            try:
                needed = zstd.get_frame_info(source.read(18)).decompressed_size  # in the frame header, if written
            except zstd.ZstdError:
                needed = None
            source.seek(0)
            free = shutil.disk_usage(folder).free
            try:
                if needed is not None and needed > free:
                    raise OSError(errno.ENOSPC, 'not enough free space')
                with zstd.open(source, 'rb') as stream, target.open('wb') as output:
                    shutil.copyfileobj(stream, output, COPY_BLOCK)
            except OSError as exc:
                if exc.errno not in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
                    raise
                written = target.stat().st_size if target.exists() else 0
                room = _size(needed) if needed is not None else f'more than the {_size(written)} written'
                raise BagError(f'no room to decompress {file} into {Path(folder).parent} ({exc.strerror}): the split '
                               f'needs {room}, {_size(free)} were free; set TMPDIR to a folder with room for the '
                               'largest split (one is decompressed at a time)') from exc
            except (zstd.ZstdError, EOFError) as exc:
                raise BagError(f'{file} is not a complete zstd file (cut short or corrupt?): '
                               f'{_first_line(exc)}') from exc
        yield target


def _open_storage(file: Path, name: Path) -> AnyReader:
    """rosbags' reader of one bare storage file (``name`` is how the user knows it: the compressed split), MCAP
    through McapStorage.

    Raises:
        BagError: not a sqlite3 or MCAP storage file, or corrupt.
    """
    reader = AnyReader([file], default_typestore=TYPESTORE)
    if file.suffix == '.mcap':
        reader.readers[0].storage = McapStorage(file)
    try:
        reader.open()
    # rosbags raises its own errors, apsw/sqlite and struct errors alike for damaged files: all mean "unreadable"
    except Exception as exc:
        raise BagError(f'{name} is not a readable rosbag2 (sqlite3 or MCAP): {_first_line(exc)}') from exc
    return reader


class Bag:
    """An open rosbag2 (module docstring): a folder with metadata.yaml, one without (a recording never closed), or
    a bare ``.db3`` / ``.mcap`` file.

    Attributes:
        path: as given. storage: its storage plugin.
        connections: its topics (BagTopic), metadata.yaml's when it has one, else its storage files'.
        start_time, end_time: receive time (ns) of its first message and just after its last.
        typestore: message definitions of the storage file read first (to copy its messages into another bag).
        notes: lines for the caller's summary: no metadata.yaml, a cut-short file.
    Raises (constructor):
        BagError: missing, not a rosbag2, a bare file-compressed split, bad metadata.yaml, a storage file missing,
            unreadable or corrupt.
    """

    def __init__(self, path: Path):
        self.path = path
        self.notes: list[str] = []
        self.typestore = None
        self._stack = ExitStack()
        self._readers: dict[Path, AnyReader] = {}  # the uncompressed storage files, open until ``close``
        self._listed: dict[str, int] = {}  # metadata.yaml's message count per topic
        self._cut_short = False
        metadata = None
        if not path.exists():
            raise BagError(f'{path}: no such file or directory')
        if path.is_file():
            if path.name.endswith(ZSTD_SUFFIX) and _storage_suffix(path):
                raise _compressed_file_error(path)
            self._files, self.compression = [path], ''
        elif (path / 'metadata.yaml').is_file():
            metadata = _read_metadata(path)
            self._files, self.compression = metadata.files, metadata.compression
        else:
            self._files, self.compression = self._unclosed_recording(path), ''
        if not self._files or not all(_storage_suffix(f) for f in self._files):
            raise BagError(f'{path} is not a rosbag2: expected a bag folder or a .db3 / .mcap file')
        self.storage = STORAGES[_storage_suffix(self._files[0])]
        try:
            if self.compression != 'file':
                for file in self._files:
                    self._readers[file] = self._stack.enter_context(self._reading(file))
            if metadata is not None:
                self.connections, self.start_time, self.end_time = metadata.topics, metadata.start_time, \
                    metadata.end_time
                self._listed = {t.topic: t.msgcount for t in metadata.topics}
            else:
                self.connections = self._storage_topics()
                readers = self._readers.values()
                self.start_time = min(r.start_time for r in readers)
                self.end_time = max(r.end_time for r in readers)
        except BaseException:
            self.close()
            raise

    def _unclosed_recording(self, folder: Path) -> list[Path]:
        files = sorted((p for p in folder.iterdir() if p.is_file() and _storage_suffix(p)), key=_split_order)
        if any(p.name.endswith(ZSTD_SUFFIX) for p in files):
            raise BagError(f'{folder} holds file-compressed storage files but no metadata.yaml, which says how to '
                           'read them: restore it, or decompress them (zstd -d) and pass the folder')
        if files:
            self.notes.append(f'{folder} has no metadata.yaml (the recording was not closed): read its storage '
                              f'files {", ".join(p.name for p in files)} in that order')
        return files

    def _storage_topics(self) -> list[BagTopic]:
        counts: dict[tuple[str, str], int] = {}
        for reader in self._readers.values():
            for c in reader.connections:
                counts[c.topic, c.msgtype] = counts.get((c.topic, c.msgtype), 0) + c.msgcount
        return [BagTopic(topic, msgtype, count) for (topic, msgtype), count in counts.items()]

    @contextmanager
    def _reading(self, file: Path) -> Iterator[AnyReader]:
        """rosbags' reader of one storage file: the one held open, or a file-compressed split decompressed for as
        long as it is read."""
        if file in self._readers:
            yield self._readers[file]
            return
        with ExitStack() as stack:
            plain = stack.enter_context(_decompressed(file)) if self.compression == 'file' else file
            reader = _open_storage(plain, file)
            stack.callback(reader.close)
            self._opened(reader, file)
            yield reader

    def _opened(self, reader: AnyReader, file: Path) -> None:
        """Keep the first typestore; say where an MCAP file was cut short (BagError when nothing of it is left)."""
        if self.typestore is None:
            self.typestore = reader.typestore
        truncation = getattr(reader.readers[0].storage, 'truncation', None)
        if truncation is None:
            return
        complete, size = truncation
        if not reader.message_count:
            raise BagError(f'{file} was cut short at byte {size} (no MCAP footer: the recorder did not close it) '
                           'before its first complete chunk: nothing to read; `mcap recover` may salvage part of '
                           'it')
        self._cut_short = True
        last = reader.end_time - 1
        note = (f'{file} was cut short (no MCAP footer: the recorder did not close it): read its complete chunks, '
                f'{reader.message_count} messages received up to {last // 10**9}.{last % 10**9:09d}, the first '
                f'{complete} of its {size} bytes; the rest is lost (`mcap recover` may salvage part of it)')
        if note not in self.notes:  # a split is opened once per pass over the bag
            self.notes.append(note)

    def messages(self, topics: list[str]) -> Iterator[tuple[Connection, int, bytes, object]]:
        """``(connection, receive time ns, raw bytes, message)`` of ``topics``, storage file after storage file, each in
        receive-time order (an unindexed MCAP in file order).

        Raises:
            BagError: a storage file is truncated or corrupt, a message cannot be deserialized, no room to decompress
                a split, or (once read to the end) a topic has fewer messages than metadata.yaml lists.
        """
        counts = dict.fromkeys(topics, 0)
        for file in self._files:
            with self._reading(file) as reader:
                connections = [c for c in reader.connections if c.topic in counts]
                if not connections:  # rosbags reads every topic when given none
                    continue
                stream = reader.messages(connections=connections)
                while True:
                    try:
                        connection, timestamp, raw = next(stream)
                        if self.compression == 'message':
                            raw = zstd.decompress(raw)
                        message = reader.deserialize(raw, connection.msgtype)
                    except StopIteration:
                        break
                    # as in _open_storage: any failure inside the bag reader means the file is damaged
                    except Exception as exc:
                        raise BagError(f'cannot read {file} (truncated or corrupt?): {_first_line(exc)}') from exc
                    counts[connection.topic] += 1
                    yield connection, timestamp, raw, message
        for topic, count in counts.items():
            listed = self._listed.get(topic, 0)
            if count < listed and not self._cut_short:
                raise BagError(f'{self.path}: {topic} has {count} messages in its storage files but metadata.yaml '
                               f'lists {listed}: metadata.yaml does not describe them (edited, or another '
                               'recording\'s?); rewrite it from the storage files with `ros2 bag reindex`')

    def close(self) -> None:
        """Close every storage file (and delete a decompressed split). Idempotent."""
        self._stack.close()


@contextmanager
def open_bag(path: Path) -> Iterator[Bag]:
    """Open a rosbag2 folder, or a bare ``.db3`` / ``.mcap`` file, for reading (``Bag``).

    Raises:
        BagError: as ``Bag``.
    """
    bag = Bag(path)
    try:
        yield bag
    finally:
        bag.close()


def topics_of_types(bag: Bag, msgtypes: tuple[str, ...]) -> dict[str, str]:
    """``{topic: msgtype}`` for the bag's topics whose type is one of ``msgtypes``, sorted by topic."""
    return {c.topic: c.msgtype for c in sorted(bag.connections, key=lambda c: c.topic)
            if c.msgtype in msgtypes}


def _connections(bag: Bag, topic: str) -> list[BagTopic]:
    return [c for c in bag.connections if c.topic == topic]


def select_image_topic(bag: Bag, topic: str | None) -> tuple[str, str]:
    """The image topic to process and its type: ``topic`` if given, else the bag's only image topic.

    Raises:
        BagError: the topic is absent or of another type, or no/several image topics and none chosen;
            the message lists the bag's image topics.
    """
    images = topics_of_types(bag, IMAGE_TYPES)
    listing = ', '.join(f'{t} ({m})' for t, m in images.items()) or 'none'
    if videos := topics_of_types(bag, VIDEO_TYPES):
        listing += ('; video topics, which are not supported (streams of packets, not images): '
                    + ', '.join(f'{t} ({m})' for t, m in videos.items()))
    if topic is None:
        if len(images) != 1:
            raise BagError(f'the bag has {len(images)} image topics, choose one with --image-topic: {listing}')
        return next(iter(images.items()))
    connections = _connections(bag, topic)
    if not connections:
        raise BagError(f'topic {topic} is not in the bag; its image topics: {listing}')
    if connections[0].msgtype not in IMAGE_TYPES:
        raise BagError(f'topic {topic} has type {connections[0].msgtype}, expected one of {IMAGE_TYPES}; '
                       f'the bag\'s image topics: {listing}')
    return topic, connections[0].msgtype


def base_topic(image_topic: str, msgtype: str) -> str:
    """image_transport's base topic: ``/cam/image_raw/compressed`` -> ``/cam/image_raw``."""
    if msgtype == COMPRESSED_IMAGE and image_topic.endswith('/compressed'):
        return image_topic[:-len('/compressed')]
    return image_topic


def namespace_of(image_topic: str, msgtype: str) -> str:
    """The namespace of an image's base topic: ``/cam/image_raw[/compressed]`` -> ``/cam`` (``''`` at the root)."""
    return str(PurePosixPath(base_topic(image_topic, msgtype)).parent).rstrip('/')


def sibling_camera_info(image_topic: str, msgtype: str) -> str:
    """The camera_info topic beside an image topic: ``/cam/image_raw[/compressed]`` -> ``/cam/camera_info``."""
    return str(PurePosixPath(base_topic(image_topic, msgtype)).parent / 'camera_info')


def camera_info_note(image_topic: str, msgtype: str, info_topic: str, option: str) -> str:
    """A note for the run's summary when the camera_info was not found beside the image but is the bag's only
    CameraInfo topic, which may be another camera's ('' when it is beside it); ``option`` chooses another."""
    if info_topic == sibling_camera_info(image_topic, msgtype):
        return ''
    return (f'camera_info from {info_topic}, the bag\'s only CameraInfo topic (not beside {image_topic}); '
            f'{option} if it belongs to another camera')


def select_camera_info_topic(bag: Bag, image_topic: str, msgtype: str,
                             topic: str | None) -> str | None:
    """The camera_info topic: ``topic`` if given, else ``camera_info`` beside the image's base topic,
    else the bag's only CameraInfo topic, else None (depth without points).

    Raises:
        BagError: a given ``topic`` is absent or not sensor_msgs/CameraInfo.
    """
    infos = topics_of_types(bag, (CAMERA_INFO,))
    if topic is not None:
        connections = _connections(bag, topic)
        if not connections or connections[0].msgtype != CAMERA_INFO:
            found = connections[0].msgtype if connections else 'absent'
            raise BagError(f'camera_info topic {topic} is {found}; the bag\'s CameraInfo topics: '
                           f'{", ".join(infos) or "none"}')
        return topic
    sibling = sibling_camera_info(image_topic, msgtype)
    if sibling in infos:
        return sibling
    return next(iter(infos)) if len(infos) == 1 else None


@contextmanager
def _storage_errors_as_os_errors(path: Path) -> Iterator[None]:
    """rosbags' sqlite3 storage raises sqlite3 errors where the MCAP one raises OSError (a full disk: 'database or
    disk is full', 'disk I/O error'): the caller gets an OSError for both."""
    try:
        yield
    except sqlite3.Error as exc:
        raise OSError(f'cannot write {path}: {exc}') from exc


class BagWriter:
    """A new rosbag2 at ``path`` (which must not exist) with one connection per output topic.

    Raises (every method but ``abort``):
        OSError: the storage cannot be written (disk full, I/O error), sqlite3 and MCAP alike.
    """

    def __init__(self, path: Path, storage: StoragePlugin):
        self._path = path
        self._writer = Writer(path, version=BAG_VERSION, storage_plugin=storage)
        with _storage_errors_as_os_errors(path):
            self._writer.open()
        self._connections: dict[str, Connection] = {}

    @property
    def topics(self) -> list[str]:
        """The topics written so far, in order of their first message."""
        return list(self._connections)

    def write(self, topic: str, message, timestamp: int) -> None:
        """Serialize ``message`` (a TYPESTORE message) and write it at receive time ``timestamp`` (ns)."""
        msgtype = message.__msgtype__
        with _storage_errors_as_os_errors(self._path):
            if topic not in self._connections:
                self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=TYPESTORE)
            self._writer.write(self._connections[topic], timestamp, TYPESTORE.serialize_cdr(message, msgtype))

    def write_raw(self, source: Connection, timestamp: int, raw: bytes, typestore) -> None:
        """Copy an input message unchanged (``--copy-inputs``), with the input bag's type definition."""
        with _storage_errors_as_os_errors(self._path):
            if source.topic not in self._connections:
                self._connections[source.topic] = self._writer.add_connection(
                    source.topic, source.msgtype, typestore=typestore)
            self._writer.write(self._connections[source.topic], timestamp, raw)

    def close(self) -> None:
        """Finish the bag (metadata.yaml, MCAP summary). Idempotent."""
        if self._writer.storage is not None:
            with _storage_errors_as_os_errors(self._path):
                self._writer.close()

    def abort(self) -> None:
        """Release the storage without finishing the bag (the caller deletes the files)."""
        self._writer.abort()
