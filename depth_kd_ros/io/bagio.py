"""Rosbag2 input and output (sqlite3 and MCAP, no ROS install) with ``rosbags``.

The bag side of ``mono_depth_offline bag`` and of training on recordings (docs/design.md sections 3-4): open and
recognise bags, choose the image and camera_info topics, read messages in receive-time order, write a new bag.
Topics follow image_transport: ``/cam/image_raw`` and ``/cam/image_raw/compressed`` have the base topic
``/cam/image_raw``, whose namespace ``/cam`` holds ``/cam/camera_info`` (and the offline tool's outputs).
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from rosbags.highlevel import AnyReader
from rosbags.interfaces import Connection
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

#: message definitions for bags without embedded ones and for the output (sensor_msgs is the same in Humble)
TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
POINT_CLOUD2 = 'sensor_msgs/msg/PointCloud2'
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)
#: rosbag2 storage file suffix -> its storage plugin
STORAGES = {'.db3': StoragePlugin.SQLITE3, '.mcap': StoragePlugin.MCAP}
#: rosbag2 metadata version 8 (Jazzy's); rosbags writes only 8 or 9
BAG_VERSION = 8


class BagError(ValueError):
    """The bag cannot be read (not a bag, truncated, corrupt) or lacks the topic asked for."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


@contextmanager
def open_bag(path: Path) -> Iterator[AnyReader]:
    """Open a rosbag2 directory, or a bare ``.db3`` / ``.mcap`` file, for reading.

    Raises:
        BagError: the path is missing, is not a rosbag2, or its metadata or storage is corrupt.
    """
    if not path.exists():
        raise BagError(f'{path}: no such file or directory')
    try:
        reader = AnyReader([path], default_typestore=TYPESTORE)
        reader.open()
    # rosbags raises its own errors, apsw/sqlite and struct errors alike for damaged files: all mean "unreadable"
    except Exception as exc:
        raise BagError(f'{path} is not a readable rosbag2 (sqlite3 or MCAP): {_first_line(exc)}') from exc
    try:
        yield reader
    finally:
        reader.close()


def is_bag(path: Path) -> bool:
    """A rosbag2: a storage file (STORAGES' suffixes), or a folder with metadata.yaml or such a file."""
    if path.is_file():
        return path.suffix in STORAGES
    return (path / 'metadata.yaml').is_file() or any(p.suffix in STORAGES for p in path.iterdir())


def storage_of(path: Path) -> StoragePlugin:
    """The storage plugin of a bag directory or file: MCAP when it holds a ``.mcap`` file, else sqlite3."""
    files = [path] if path.is_file() else list(path.iterdir())
    return StoragePlugin.MCAP if any(f.suffix == '.mcap' for f in files) else StoragePlugin.SQLITE3


def topics_of_types(reader: AnyReader, msgtypes: tuple[str, ...]) -> dict[str, str]:
    """``{topic: msgtype}`` for the bag's topics whose type is one of ``msgtypes``, sorted by topic."""
    return {c.topic: c.msgtype for c in sorted(reader.connections, key=lambda c: c.topic)
            if c.msgtype in msgtypes}


def _connections(reader: AnyReader, topic: str) -> list[Connection]:
    return [c for c in reader.connections if c.topic == topic]


def select_image_topic(reader: AnyReader, topic: str | None) -> tuple[str, str]:
    """The image topic to process and its type: ``topic`` if given, else the bag's only image topic.

    Raises:
        BagError: the topic is absent or of another type, or no/several image topics and none chosen;
            the message lists the bag's image topics.
    """
    images = topics_of_types(reader, IMAGE_TYPES)
    listing = ', '.join(f'{t} ({m})' for t, m in images.items()) or 'none'
    if topic is None:
        if len(images) != 1:
            raise BagError(f'the bag has {len(images)} image topics, choose one with --image-topic: {listing}')
        return next(iter(images.items()))
    connections = _connections(reader, topic)
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


def select_camera_info_topic(reader: AnyReader, image_topic: str, msgtype: str,
                             topic: str | None) -> str | None:
    """The camera_info topic: ``topic`` if given, else ``camera_info`` beside the image's base topic,
    else the bag's only CameraInfo topic, else None (depth without points).

    Raises:
        BagError: a given ``topic`` is absent or not sensor_msgs/CameraInfo.
    """
    infos = topics_of_types(reader, (CAMERA_INFO,))
    if topic is not None:
        connections = _connections(reader, topic)
        if not connections or connections[0].msgtype != CAMERA_INFO:
            found = connections[0].msgtype if connections else 'absent'
            raise BagError(f'camera_info topic {topic} is {found}; the bag\'s CameraInfo topics: '
                           f'{", ".join(infos) or "none"}')
        return topic
    sibling = sibling_camera_info(image_topic, msgtype)
    if sibling in infos:
        return sibling
    return next(iter(infos)) if len(infos) == 1 else None


def read_messages(reader: AnyReader, topics: list[str]) -> Iterator[tuple[Connection, int, bytes, object]]:
    """``(connection, receive time ns, raw bytes, message)`` of ``topics`` in receive-time order.

    Raises:
        BagError: the storage is truncated or corrupt, or a message cannot be deserialized.
    """
    messages = reader.messages(connections=[c for c in reader.connections if c.topic in topics])
    while True:
        try:
            connection, timestamp, raw = next(messages)
            message = reader.deserialize(raw, connection.msgtype)
        except StopIteration:
            return
        # as in open_bag: any failure inside the bag reader means the file is damaged
        except Exception as exc:
            raise BagError(f'cannot read {reader.paths[0]} (truncated or corrupt?): {_first_line(exc)}') from exc
        yield connection, timestamp, raw, message


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
