"""MCAP storage files as robots leave them: written without an index, or cut short.

rosbags' MCAP reader (``rosbags.rosbag2.storage_mcap.McapReader``) with two differences, each what rosbag2's own
MCAP plugin (rosbag2_storage_mcap) does:

    unindexed file      (the recorder's ``fastwrite`` preset: no chunks, so no message index) messages in file
                        order, the order the recorder wrote them. rosbags reads such a file in file order too, but
                        raises as soon as two topics read together are out of receive-time order, which messages
                        of different topics often are by a few milliseconds (rosbag2_storage_mcap: "no message
                        indices found, falling back to reading in file order").
    cut short           (no footer: the recorder was killed, the robot lost power) the records up to the last
                        complete one, so every complete chunk; the cut chunk and everything after it is lost, and
                        ``truncation`` says where the file ends. rosbags refuses the file ("File end magic is
                        invalid"); ``ros2 bag reindex`` cannot fix it; ``mcap recover`` salvages what it can.

MCAP layout (mcap.dev/spec): magic, then records of ``opcode (uint8), length (uint64 LE), content``; the data
section ends with a DataEnd record, followed by the summary and the footer, then the magic again.
"""
from __future__ import annotations

import struct
from collections.abc import Collection, Iterator
from io import BytesIO
from typing import NamedTuple

from rosbags.interfaces import Connection
from rosbags.rosbag2.errors import ReaderError
from rosbags.rosbag2.storage_mcap import McapReader, read_sized, read_string

MAGIC = b'\x89MCAP0\r\n'
HEADER, FOOTER, DATA_END = 0x01, 0x02, 0x0F
RECORD_START = struct.Struct('<BQ')  # opcode, content length


class Truncation(NamedTuple):
    """Where a cut-short MCAP file ends: its records are complete up to ``complete_bytes`` of ``file_bytes``."""

    complete_bytes: int
    file_bytes: int


class McapStorage(McapReader):
    """rosbags' McapReader that reads unindexed files in file order and cut-short files up to their last complete
    record (module docstring). Opened and read through rosbags' Reader like the class it replaces.

    Raises (``open``):
        ReaderError: not an MCAP file of the ros2 profile, or cut short inside its header.
    """

    truncation: Truncation | None = None

    def _open(self) -> None:
        bio = self.bio
        assert bio
        size = bio.seek(0, 2)
        bio.seek(0)
        starts_as_mcap = bio.read(len(MAGIC)) == MAGIC
        bio.seek(max(size - len(MAGIC), 0))
        if not starts_as_mcap or size <= 2 * len(MAGIC) or bio.read() == MAGIC:
            bio.seek(0)
            super()._open()
            return
        self._open_cut_short(size)

    def _open_cut_short(self, size: int) -> None:
        """The data records before the first incomplete one, indexed by a scan as rosbags indexes a file without a
        summary (``meta_scan``)."""
        bio = self.bio
        bio.seek(len(MAGIC))
        if bio.read(1) != bytes([HEADER]):
            raise ReaderError('Unexpected record.')
        if read_string(BytesIO(read_sized(bio))) != 'ros2':
            raise ReaderError('Profile is not ros2.')
        self.data_start = complete = bio.tell()
        while complete + RECORD_START.size <= size:
            bio.seek(complete)
            opcode, length = RECORD_START.unpack(bio.read(RECORD_START.size))
            if opcode in (DATA_END, FOOTER) or complete + RECORD_START.size + length > size:
                break
            complete += RECORD_START.size + length
        self.data_end = complete
        self.truncation = Truncation(complete, size)
        self.meta_scan()
        statistics = self.statistics
        assert statistics
        self.connections = [c._replace(msgcount=statistics.channel_message_counts.get(c.id, 0))
                            for c in self.connections]
        count = statistics.message_count
        self.metadata = self.metadata._replace(
            duration=statistics.end_time - statistics.start_time + 1 if count else 0,
            start_time=statistics.start_time if count else 2**63 - 1,
            end_time=statistics.end_time + 1 if count else 0, message_count=count)

    def messages(self, connections: Collection[Connection], start: int | None = None,
                 stop: int | None = None) -> Iterator[tuple[Connection, int, bytes]]:
        """``(connection, receive time ns, raw bytes)``: in receive-time order from an indexed file, in file order
        from an unindexed or cut-short one."""
        if not self.chunks:
            return self.messages_scan(connections, start, stop)
        return super().messages(connections, start, stop)
