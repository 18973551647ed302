"""``mono_depth_offline bag``: depth, camera_info, points (and uncertainty) for every image of a rosbag2.

Each frame goes through the node's own frame path (depth_kd_ros.frames: decoding, pipeline, output messages,
here of rosbags' message classes), so the bag holds what the live node would publish had it kept up with the
camera. Per image (raw sensor_msgs/Image or CompressedImage) with header stamp t:

    camera_info = the latest on the camera_info topic with stamp <= t (camera.pairing)
    <ns>/depth               32FC1 metres, NaN invalid, or 16UC1 millimetres, 0 invalid (params depth_encoding;
                             REP 118), the input's size
    <ns>/depth/camera_info   the paired camera_info, unchanged but for the header (params rectify: the
                             rectified camera's, D zero, K from P)
    <ns>/points              PointCloud2 (params: stride, ranges, organised, rgb)
    <ns>/depth/uncertainty   32FC1 metres (depth_std), when the model has it

Every output message has the input's header (stamp, frame_id) and the input's receive time as its bag
timestamp. The output bag uses the input's storage (sqlite3 or MCAP). Frames are skipped and counted,
never half written: undecodable images, and, when the bag has camera_info, images stamped before the first
one or whose camera_info is unusable (with rectify: one it cannot rectify with). A bag without camera_info
gets depth only (no focal scaling).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from rosbags.interfaces import Connection
from tqdm import tqdm

from depth_kd_ros.backends import BackendError
from depth_kd_ros.camera.pairing import bag_camera_infos, stamp_nanoseconds
from depth_kd_ros.frames import OUTPUT_TOPICS, FramePath, FrameSkipped, MessageFactory, frame_name
from depth_kd_ros.io.bagio import (
    CAMERA_INFO,
    IMAGE,
    POINT_CLOUD2,
    TYPESTORE,
    BagWriter,
    camera_info_note,
    namespace_of,
    open_bag,
    read_messages,
    select_camera_info_topic,
    select_image_topic,
    storage_of,
)
from depth_kd_ros.offline.overlapped import Overlapped
from depth_kd_ros.offline.run import AtomicOutput, OfflineError, Summary, make_pipeline
from depth_kd_ros.pipeline import FrameResult, PendingFrame

_TYPES = TYPESTORE.types


def _empty_image(header):
    return _TYPES[IMAGE](header=header, height=0, width=0, encoding='', is_bigendian=0, step=0,
                         data=np.empty(0, np.uint8))


def _empty_camera_info(header):
    roi = _TYPES['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return _TYPES[CAMERA_INFO](header=header, height=0, width=0, distortion_model='', d=np.empty(0), k=np.zeros(9),
                               r=np.zeros(9), p=np.zeros(12), binning_x=0, binning_y=0, roi=roi)


def _empty_cloud(header):
    return _TYPES[POINT_CLOUD2](header=header, height=0, width=0, fields=[], is_bigendian=False, point_step=0,
                               row_step=0, data=np.empty(0, np.uint8), is_dense=False)


#: the node's output topics (relative names) that ``mono_depth_offline bag`` writes: all but the depth/colored
#: preview
OUTPUTS = tuple(topic for topic in OUTPUT_TOPICS if topic != 'depth/colored')
#: output messages of rosbags' typestore classes (their constructors take every field)
TYPESTORE_MESSAGES = MessageFactory(image=_empty_image, camera_info=_empty_camera_info, point_cloud2=_empty_cloud,
                                   point_field=_TYPES['sensor_msgs/msg/PointField'])


@dataclass
class BagFrame:
    """One message of the bag on its way through read -> infer -> write (overlapped.Overlapped's stages).

    ``message`` is None for a message that is only copied (``--copy-inputs``). For an image, ``pending`` is the
    frame between the pipeline's steps (prepared: decoded, rectified, resized to the model; then inferred), and
    ``outcome`` why it is skipped (a str) once a step fails, else the pipeline's FrameResult once finished.
    """

    connection: Connection
    timestamp: int  # receive time, ns
    raw: bytes
    message: Any = None
    camera_info: Any = None  # the paired CameraInfo, or None
    pending: PendingFrame | None = None
    outcome: FrameResult | str | None = None


def output_topics(image_topic: str, msgtype: str) -> dict[str, str]:
    """The bag topic of each of ``OUTPUTS`` (the node's relative names), in the namespace of the image's base
    topic, image_transport style: ``/cam/image_raw[/compressed]`` -> ``/cam/depth``, ``/cam/depth/camera_info``,
    ``/cam/depth/uncertainty``, ``/cam/points``."""
    namespace = namespace_of(image_topic, msgtype)
    return {name: f'{namespace}/{name}' for name in OUTPUTS}


def prepare_frame(frames: FramePath, frame: BagFrame, *, paired: bool) -> BagFrame:
    """The frame sequence and the model input of ``frame.message`` (the reader thread); ``paired`` says whether the
    bag has camera_info at all (without, frames are served without a camera: depth only). Sets ``outcome`` to
    why the frame is skipped when that fails."""
    try:
        camera_frame, frame.pending = frames.prepare(frame.message, frame.camera_info, require_camera=paired)
    except FrameSkipped as exc:
        frame.outcome = exc.reason
        return frame
    frame.camera_info = camera_frame.camera_info
    return frame


def infer_frame(frames: FramePath, frame: BagFrame) -> BagFrame:
    """Run the model on a prepared image (the inference thread); other messages pass through."""
    if frame.pending is not None:
        try:
            frames.pipeline.infer(frame.pending)
        except BackendError as exc:
            frame.pending, frame.outcome = None, f'inference failed: {exc}'
    return frame


def write_frame(frames: FramePath, frame: BagFrame, outputs: list[str], topics: dict[str, str],
                writer: BagWriter) -> None:
    """Finish an inferred image (depth at its size, cloud) and write its output messages, each with its header and
    receive time; ``topics`` maps the node's output topics to the bag's (``output_topics``). Sets ``outcome``
    to the FrameResult, or to why the frame is skipped."""
    try:
        frame.outcome = frames.finish(frame.pending, outputs)
    except BackendError as exc:
        frame.outcome = f'inference failed: {exc}'
        return
    frame.pending = None
    for topic, output in frames.messages(frame.outcome, frame.message.header, frame.camera_info, outputs,
                                         rectified=frames.pipeline.params.rectify).items():
        writer.write(topics[topic], output, frame.timestamp)


def run_bag(args) -> Summary:
    """Process ``args.input`` into the new bag ``args.output`` (module docstring); returns the summary.

    Raises:
        BagError: not a bag, truncated or corrupt, topic missing or of the wrong type.
        OfflineError: OUTPUT exists without --overwrite, or no frame could be processed.
        ParameterError, ModelFileError, BackendError: bad params file, model or backend.
    """
    summary = Summary()
    with open_bag(args.input) as reader:
        topic, msgtype = select_image_topic(reader, args.image_topic)
        info_topic = select_camera_info_topic(reader, topic, msgtype, args.camera_info_topic)
        infos = bag_camera_infos(reader, info_topic)
        if not infos:
            summary.notes.append('no camera_info in the bag: depth only, without focal scaling or points')
        elif args.camera_info_topic is None and (note := camera_info_note(topic, msgtype, info_topic,
                                                                          'pass --camera-info-topic')):
            summary.notes.append(note)
        topics = output_topics(topic, msgtype)
        frames = FramePath(make_pipeline(args), TYPESTORE_MESSAGES)
        outputs = [t for t in OUTPUTS if t != 'points' or frames.pipeline.params.publish_points]
        read = [topic, info_topic] if args.copy_inputs and info_topic else [topic]

        def prepared():  # the reader thread: read, deserialize, pair, decode, rectify
            for connection, timestamp, raw, message in read_messages(reader, read):
                if connection.topic != topic:
                    yield BagFrame(connection, timestamp, raw)
                    continue
                match = infos.match(stamp_nanoseconds(message.header.stamp))
                frame = BagFrame(connection, timestamp, raw, message, match.info if match else None)
                yield prepare_frame(frames, frame, paired=bool(infos))

        output = AtomicOutput(args.output, args.overwrite, args.input, keep=(frames.pipeline.params.model_path,))
        writer = None
        try:
            writer = BagWriter(output.path, storage_of(args.input))
            total = sum(c.msgcount for c in reader.connections if c.topic in read)
            summary.begin()
            with tqdm(total=total, unit='msg', disable=args.quiet, leave=False) as progress, \
                    Overlapped(prepared(), lambda frame: infer_frame(frames, frame)) as inferred:
                for frame in inferred:  # this thread writes: the sqlite3 writer stays on the thread that opened it
                    progress.update()
                    if args.copy_inputs:
                        writer.write_raw(frame.connection, frame.timestamp, frame.raw, reader.typestore)
                    if frame.message is None:
                        continue
                    summary.frames_in += 1
                    if frame.pending is not None:
                        write_frame(frames, frame, outputs, topics, writer)
                    if isinstance(frame.outcome, str):
                        stamp = stamp_nanoseconds(frame.message.header.stamp)
                        summary.skip(frame.outcome, frame_name(summary.frames_in - 1, stamp))
                    else:
                        summary.add(frame.outcome)
            summary.end()
            if summary.written == 0:
                raise OfflineError(f'no frame of {topic} could be processed ({summary.frames_in} in the bag); '
                                   'nothing written')
            writer.close()
            summary.notes.insert(0, f'wrote {args.output}: {", ".join(writer.topics)}')
            output.commit()
        except BaseException:
            if writer is not None:
                writer.abort()
            output.abort()
            raise
    return summary
