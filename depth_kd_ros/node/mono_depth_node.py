"""mono_depth_node: camera images -> metric depth image, point cloud, preview and diagnostics (rclpy glue).

The per-frame work (the frame sequence: decode, rectify, camera; the pipeline; output messages) is frames.py's,
shared with the offline tool; this node serves a frame without a usable camera (depth without focal scaling or
points). The process around the node (rclpy start and stop, signals, exit codes) is process.py's.
Topics (relative, so launch files remap them): subscribes ``image`` (or ``image/compressed``) and
``camera_info``; publishes ``depth`` (32FC1 metres or 16UC1 millimetres: depth_encoding; REP 118),
``depth/camera_info``, ``depth/colored`` (bgr8), ``depth/uncertainty`` (32FC1 metres, models with depth_std),
``points`` (PointCloud2, REP 103 optical frame) and ``/diagnostics``. Keep-latest (latest_frame.LatestFrameWorker):
the callback hands only the newest frame to one worker thread, so a slow model drops frames, never queues. With
``managed:=true`` a lifecycle node (REP 2006): MonoDepthNode says what each transition does.
"""
from __future__ import annotations

import time

import numpy as np
import sensor_msgs.msg
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNodeMixin, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.timer import Timer
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField

from depth_kd_ros.backends import BackendError
from depth_kd_ros.camera.pairing import CameraInfoBuffer, stamp_nanoseconds
from depth_kd_ros.camera.pointcloud import is_optical_frame
from depth_kd_ros.frames import OUTPUT_TOPICS, OUTPUT_TYPES, FramePath, FrameSkipped, MessageFactory
from depth_kd_ros.model_file import ModelFileError
from depth_kd_ros.node.diagnostics import ERROR, OK, FrameStats
from depth_kd_ros.node.latest_frame import LatestFrameWorker
from depth_kd_ros.params import (
    NODE_NAME,
    SPECS,
    NodeParams,
    ParameterError,
    params_from_dict,
)
from depth_kd_ros.pipeline import check_params_for_model, load_pipeline

#: output messages of rclpy's sensor_msgs classes
RCLPY_MESSAGES = MessageFactory(image=lambda header: Image(header=header),
                                camera_info=lambda header: CameraInfo(header=header),
                                point_cloud2=lambda header: PointCloud2(header=header), point_field=PointField)

#: message class of each output topic (frames.OUTPUT_TYPES names them)
OUTPUT_CLASSES = {topic: getattr(sensor_msgs.msg, name) for topic, name in OUTPUT_TYPES.items()}
#: sensor-data QoS with room for the infos that arrive while the executor is busy: each may be some frame's own
CAMERA_INFO_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
#: a latched calibration (published once, before the node started) reaches only a transient_local reader
LATCHED_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
#: an unusable configuration or model: exit 2 unmanaged, a failed configure managed (one line, no traceback)
CONFIGURATION_ERRORS = (ParameterError, ModelFileError, BackendError)
#: seconds between looks at the camera_info publishers' durability (until a latched one is found)
LATCHED_CHECK_PERIOD = 0.5
#: seconds the frame in progress gets to finish (and publish) when the worker stops: deactivate, shutdown, SIGINT
WORKER_STOP_S = 5.0


def _descriptor(name: str, read_only: bool) -> ParameterDescriptor:
    meta, kind = SPECS[name].metadata, type(SPECS[name].default)
    descriptor = ParameterDescriptor(description=meta['description'], read_only=read_only)
    if meta['choices']:
        descriptor.additional_constraints = 'one of: ' + ', '.join(meta['choices'])
    if meta['low'] is not None and kind is float:
        descriptor.floating_point_range = [FloatingPointRange(from_value=float(meta['low']),
                                                              to_value=float(meta['high']), step=0.0)]
    elif meta['low'] is not None:
        descriptor.integer_range = [IntegerRange(from_value=meta['low'], to_value=meta['high'], step=1)]
    return descriptor


class MonoDepthNode(LifecycleNodeMixin, Node):
    """Declares parameters, loads the model, wires topics to the frame path on a worker thread.

    Both modes run the same lifecycle transitions (REP 2006) and their same set-up and tear-down steps:
    unmanaged (``managed`` false, the default) the constructor configures and activates, with no lifecycle
    services, so the node serves from the start as before; managed, it starts unconfigured and a manager
    (``ros2 lifecycle set``, Nav2's lifecycle manager, launch_ros) drives it through ``/<node>/change_state``:

        configure   read the parameters, load the model and build the backend (engine), create the publishers;
                    an unusable model or configuration fails the transition with one logged line and leaves
                    the node unconfigured (set the parameters and configure again)
        activate    subscribe the inputs and start the worker: depth is served
        deactivate  unsubscribe and stop the worker (the frame in progress finishes): no input, no output
        cleanup     drop the publishers and free the model and backend
        shutdown    tear down whatever is up; the process then exits 0

    /diagnostics publishes in every state; when not active it says the state (and a failed configure's error).

    Raises:
        ParameterError, ModelFileError, BackendError, rclpy ParameterException: (constructor) the configuration
            or the model is unusable; main() turns them into a clear exit. Managed, only a parameter of the
            wrong type raises; the rest fails configure.
    """

    def __init__(self, **node_kwargs):
        Node.__init__(self, NODE_NAME, **node_kwargs)
        self._worker = None
        self.frame_unfinished = False  # a worker was let go inside a frame: main() then exits without tear-down
        self._unfinished_worker: LatestFrameWorker | None = None  # that worker, until cleanup
        try:
            self.managed: bool = self.declare_parameter('managed', SPECS['managed'].default,
                                                        _descriptor('managed', read_only=True)).value
            LifecycleNodeMixin.__init__(self, enable_communication_interface=self.managed)
            if self.managed:
                self._refuse_unavailable_transitions()
            self._declare()
            if not self.managed:
                if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                    raise self._configure_error
                self.trigger_activate()
        except Exception:
            self.destroy_node()
            raise

    def _refuse_unavailable_transitions(self) -> None:
        """Answer a change_state request for a transition the current state lacks with success false, as rclcpp's
        lifecycle node does. rclpy's handler (Jazzy 7.1) raises RCLError for such a transition id ('Transition is not
        registered') out of the executor: activate before configure, as a manager may send it, ended the process.
        Requests by label are left to rclpy, which already refuses an unknown one."""
        serve = self._service_change_state.callback

        def change_state(request, response):
            transition = request.transition
            available = {description[0] for description in self._state_machine.available_transitions}
            if not transition.label and transition.id not in available:
                state = self._state_machine.current_state[1]
                self.get_logger().warning(f'transition {transition.id} is not available in state {state} '
                                          f'(available: {sorted(available)}); refused')
                response.success = False
                return response
            return serve(request, response)

        self._service_change_state.callback = change_state

    def _declare(self) -> None:
        """Parameters, the parameter callback and /diagnostics: what every lifecycle state has. Managed, the
        non-runtime parameters are writable (while unconfigured: the parameter callback), since configure reads
        them; unmanaged they are read-only, read once."""
        for name, spec in SPECS.items():
            if name != 'managed':
                self.declare_parameter(name, spec.default, _descriptor(
                    name, read_only=not (spec.metadata['runtime'] or self.managed)))
        # configured: the parameters, the model's pipeline and frame path, the publishers (None: unconfigured)
        self.params: NodeParams | None = None
        self.pipeline = self.frames = None
        self.publishers_by_topic: dict = {}
        self._configure_error: Exception | None = None  # why the last configure failed (until one succeeds)
        # active: the inputs (subscriptions and the camera_info durability timer) and their statistics
        self._inputs: list = []
        self.stats: FrameStats | None = None
        self._frame_ids_warned: set[str] = set()  # frame_ids already warned about as not optical
        self._frame_id = ''  # the input images' frame_id: the default hardware_id in /diagnostics
        self.finalized = False  # the shutdown transition ran: main() ends the process
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        # the process's own time: with use_sim_time and no /clock (yet) the ROS clock stands still, and a
        # timer on it would silence /diagnostics while depth is served
        self._diagnostics_timer = self._steady_timer(self.get_parameter('diagnostics_period').value,
                                                     self._publish_diagnostics)

    def _steady_timer(self, period: float, callback):
        return self.create_timer(period, callback, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except Exception as exc:  # noqa: BLE001 - any failure leaves the node unconfigured and says why
            self._cleanup()
            self._configure_error = exc
            if self.managed:  # unmanaged, main() reports it as the reason the node cannot start
                reason = exc if isinstance(exc, CONFIGURATION_ERRORS) else f'{type(exc).__name__}: {exc}'
                self.get_logger().error(f'configure failed: {reason} (still unconfigured: set the parameters and '
                                        'configure again)')
            return TransitionCallbackReturn.FAILURE
        self._configure_error = None
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._activate()
        self._log_transition('activated: serving')
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        self._log_transition('deactivated: inputs unsubscribed, not serving')
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._cleanup()
        self._log_transition('cleaned up: model and publishers freed')
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        self._cleanup()
        self.finalized = True
        self._log_transition(f'shut down from {state.label}: exiting')
        return TransitionCallbackReturn.SUCCESS

    def _log_transition(self, what: str) -> None:
        """Managed, one line per transition, as Nav2's nodes log theirs (unmanaged the start-up line says it)."""
        if self.managed:
            self.get_logger().info(what)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """A transition raised (rclpy swallows the exception): tear everything down, back to unconfigured."""
        self.get_logger().error(f'lifecycle transition from {state.label} failed; back to unconfigured')
        self._deactivate()
        self._cleanup()
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        values = {name: self.get_parameter(name).value for name in SPECS}
        self.params = params_from_dict(values)
        self.pipeline = load_pipeline(self.params)
        if self._diagnostics_timer.timer_period_ns != round(self.params.diagnostics_period * 1e9):
            self.destroy_timer(self._diagnostics_timer)  # managed: diagnostics_period set while unconfigured
            self._diagnostics_timer = self._steady_timer(self.params.diagnostics_period, self._publish_diagnostics)
        out_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self.params.output_qos_depth,
                             reliability=ReliabilityPolicy.RELIABLE if self.params.output_reliable
                             else ReliabilityPolicy.BEST_EFFORT)
        self.frames = FramePath(self.pipeline, RCLPY_MESSAGES)
        #: output topic -> publisher, in OUTPUT_TOPICS order; depth/uncertainty only for models with depth_std
        self.publishers_by_topic = {topic: self.create_publisher(OUTPUT_CLASSES[topic], topic, out_qos)
                                    for topic in OUTPUT_TOPICS
                                    if topic != 'depth/uncertainty' or self.pipeline.info.has_uncertainty}
        info = self.pipeline.info
        if info.metadata_warning:
            self.get_logger().warning(info.metadata_warning)
        self.get_logger().info(f'model {info.model_name} ({info.input_width}x{info.input_height}, outputs '
                               f'{list(info.outputs)}) on {self.params.backend}; input {self.params.input_transport}')

    def _activate(self) -> None:
        """Subscribe the inputs and start the worker; statistics start afresh (rates and stalls since now)."""
        self.stats = FrameStats(window=max(5.0, self.params.diagnostics_period), throttle=self.params.log_throttle,
                                period=self.params.diagnostics_period,
                                loss_hint='' if self.params.input_reliable else
                                '; with a reliable publisher, input_reliable:=true receives them all')
        self._camera_infos = CameraInfoBuffer()  # recent CameraInfos, matched to each image by stamp
        image_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE
                               if self.params.input_reliable else ReliabilityPolicy.BEST_EFFORT)
        compressed = self.params.input_transport == 'compressed'
        self._camera_info_topic = self.resolve_topic_name('camera_info')
        self._camera_info_qos_timer = self._steady_timer(LATCHED_CHECK_PERIOD, self._adapt_camera_info_durability)
        self._inputs = [
            self.create_subscription(CompressedImage if compressed else Image, 'image/compressed' if compressed
                                     else 'image', self._on_image, image_qos),
            self.create_subscription(CameraInfo, 'camera_info', self._camera_infos.add, CAMERA_INFO_QOS),
            self._camera_info_qos_timer]
        worker = LatestFrameWorker(self._process, name='mono_depth_worker',
                                   on_error=lambda exc: self._on_worker_error(worker, exc))
        self._worker = worker
        self._worker.start()

    def _on_worker_error(self, worker: LatestFrameWorker, exc: Exception) -> None:
        """A frame failed: an internal_error fault, unless it is the frame let go at deactivate, which then fails
        on what cleanup freed (one info line: that is expected, not a fault of the node)."""
        if worker is not self._worker:
            self.get_logger().info(f'the frame let go at deactivate ended: {type(exc).__name__}: {exc}')
            return
        self._fault('internal_error', f'{type(exc).__name__}: {exc}')

    def _deactivate(self) -> None:
        """Stop the worker (the frame in progress is published), then drop the inputs; nothing when inactive."""
        self._stop_worker()
        for entity in self._inputs:
            if isinstance(entity, Timer):
                self.destroy_timer(entity)
            else:
                self.destroy_subscription(entity)
        self._inputs = []

    def _stop_worker(self) -> None:
        """Stop the worker; the frame in progress gets WORKER_STOP_S to finish and publish, then it is let go (the
        backend's run cannot be interrupted) and ``frame_unfinished`` says so."""
        if self._worker is None:
            return
        if not self._worker.stop(timeout=WORKER_STOP_S):
            self.frame_unfinished = True
            self._unfinished_worker = self._worker
            self.get_logger().warning(f'the frame in progress did not finish within {WORKER_STOP_S:g} s; '
                                      'not waiting for it')
        self._worker = None

    def _cleanup(self) -> None:
        """Drop the publishers and free the model and backend; nothing when unconfigured."""
        for publisher in self.publishers_by_topic.values():
            self.destroy_publisher(publisher)
        self.publishers_by_topic = {}
        if self.pipeline is not None:
            if self._unfinished_worker is not None and not self._unfinished_worker.stop(timeout=0.0):
                # a TensorRT close frees the device buffers the running frame uses: leave it to the garbage
                # collector, after that frame
                self.get_logger().warning('the backend is not closed: a frame let go at deactivate still runs on it')
            else:
                self.pipeline.backend.close()
        self._unfinished_worker = None
        self.params = self.pipeline = self.frames = None

    @property
    def lifecycle_state(self) -> str:
        """'active', 'inactive' or 'unconfigured' (REP 2006 primary states), from what the node holds."""
        return 'active' if self._worker is not None else 'inactive' if self.pipeline is not None else 'unconfigured'

    def _fault(self, kind: str, message: str) -> None:
        """Count a fault; log it the first time and then at most once per log_throttle seconds per kind."""
        if self.stats.record_fault(kind):
            self.get_logger().warning(f'[{kind}] {message} (counted in /diagnostics, still serving)')

    def _on_set_parameters(self, changes) -> SetParametersResult:
        ours = {p.name: p.value for p in changes if p.name in SPECS}
        if self.params is None:  # unconfigured (managed): configure reads and checks them
            return SetParametersResult(successful=True)
        fixed = [name for name in ours if not SPECS[name].metadata['runtime']]
        if fixed:  # managed and configured (unmanaged, these are read-only)
            return SetParametersResult(successful=False, reason=f'{fixed[0]}: applies at configure; set it while '
                                       'unconfigured (deactivate and cleanup first)')
        try:
            params = self.params.replace(**ours)
            check_params_for_model(params, self.pipeline.info)
        except ParameterError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self.params = self.pipeline.params = params
        return SetParametersResult(successful=True)

    def _on_image(self, msg) -> None:
        self.stats.record_input(stamp_nanoseconds(msg.header.stamp) * 1e-9)
        self._frame_id = msg.header.frame_id
        if self._frame_id not in self._frame_ids_warned and not is_optical_frame(self._frame_id):
            self._frame_ids_warned.add(self._frame_id)  # once per frame_id: a setting, not a per-frame fault
            self.get_logger().warning(
                f'frame_id {self._frame_id!r} does not look like an optical frame (REP 103: *_optical_frame, z '
                'forward, y down): depth and points are in the optical frame, so in a body frame (x forward, '
                'z up) they show rotated by 90 degrees; publish the images in the camera\'s optical frame')
        if self._worker.submit((msg, time.monotonic())):
            self.stats.record_dropped()

    def _adapt_camera_info_durability(self) -> None:
        """Subscribe camera_info transient_local as well once a publisher offers it, as ros2 bag and rviz adapt to
        their publishers: a calibration published once before this node started then still arrives (the
        writer's history reaches a late reader). Not from the start: a transient_local reader does not match
        volatile publishers, and every camera driver would log 'incompatible QoS' for it. The sensor-data
        subscription stays; a latched publisher's later messages arrive on both (the buffer keeps the latest of
        equal stamps)."""
        offered = [info.qos_profile for info in self.get_publishers_info_by_topic(self._camera_info_topic)
                   if info.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL]
        if not offered:
            return
        reliable = any(qos.reliability == ReliabilityPolicy.RELIABLE for qos in offered)
        qos = LATCHED_QOS if reliable else QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                                                      reliability=ReliabilityPolicy.BEST_EFFORT,
                                                      durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._inputs.append(self.create_subscription(CameraInfo, 'camera_info', self._camera_infos.add, qos))
        self._camera_info_qos_timer.cancel()

    def _frame_fault(self, skipped: FrameSkipped, served: bool) -> None:
        """A fault for a frame the sequence skipped, or (``served``) serves without a camera: its kind, and a line
        that says what happened to the frame."""
        if skipped.stage == 'decode':
            message = str(skipped)
        elif skipped.stage == 'camera_info':
            message = ('every camera_info received is stamped after the image (different clocks?)'
                       if len(self._camera_infos) else 'no camera_info received yet')
            message += (': publishing depth without focal scaling, depth/camera_info or points' if served
                        else ': frame skipped (rectify needs it)')
        elif served:
            message = f'{skipped}: publishing depth without focal scaling or points'
        else:
            message = f'{skipped}: frame skipped (rectify is on; a raw frame is never published as rectified)'
        self._fault(skipped.kind, message)

    def _subscribed_outputs(self) -> list[str]:
        """The output topics someone subscribes to, in publishing order."""
        return [topic for topic, pub in self.publishers_by_topic.items() if pub.get_subscription_count() > 0]

    def _process(self, item: tuple) -> None:
        """One frame on the worker thread: ``item`` is (message, receive time on the monotonic clock)."""
        msg, received = item
        subscribed = self._subscribed_outputs()
        if not subscribed:
            return  # lazy, as depth_image_proc's connect callbacks: no decoding or inference nobody reads
        params = self.params
        match = self._camera_infos.match(stamp_nanoseconds(msg.header.stamp))  # exact stamp, else latest before
        try:
            frame = self.frames.camera_frame(msg, match.info if match else None, require_camera=False)
        except FrameSkipped as exc:
            self._frame_fault(exc, served=False)
            return
        previous = self.stats.record_input_size(frame.rgb.shape[1], frame.rgb.shape[0])
        if previous is not None:
            self._fault('resolution_change', 'input size changed from {}x{} to {}x{}'.format(
                *previous, frame.rgb.shape[1], frame.rgb.shape[0]))
        if frame.camera_missing is not None:
            self._frame_fault(frame.camera_missing, served=True)
        if match is not None and not match.exact:
            self.stats.count('camera_info_inexact')
        switched_off = {'points': not params.publish_points, 'depth/colored': not params.publish_colored}
        outputs = [topic for topic in subscribed if not switched_off.get(topic, False)]
        try:
            result = self.frames.run(frame.rgb, frame.camera, outputs)
        except BackendError as exc:
            self._fault('backend_error', str(exc))
            return
        start = time.perf_counter()
        messages = self.frames.messages(result, msg.header, frame.camera_info, outputs, rectified=frame.rectified)
        for topic, message in messages.items():
            self.publishers_by_topic[topic].publish(message)
        timings = dict(result.timings, **frame.timings, publish=(time.perf_counter() - start) * 1e3)
        self.stats.record_output(time.monotonic() - received, timings)
        if result.ground is not None:
            self.stats.record_scale(result.ground)
        if result.cloud is not None and result.cloud.num_uncertain and not result.cloud.num_valid:
            self._uncertainty_removed_every_point(result, params)

    def _uncertainty_removed_every_point(self, result, params: NodeParams) -> None:
        """A fault: the cloud is empty only because of uncertainty_threshold (docs/node.md: its sensible values)."""
        stride = params.points_stride
        with np.errstate(invalid='ignore', divide='ignore'):
            ratio = np.nanmedian(result.depth_std[::stride, ::stride] / result.depth[::stride, ::stride])
        self._fault('uncertainty_removes_all', f'uncertainty_threshold {params.uncertainty_threshold:g} removes '
                    f'every point: depth_std/depth has a median of {ratio:.2f} in this frame (the spread of this '
                    "model's bins; docs/node.md: Uncertainty); raise it, or 0 turns the filter off")

    def _publish_diagnostics(self) -> None:
        state = self.lifecycle_state
        if state == 'active':
            level, message, values = self.stats.summary()
        elif self._configure_error is not None:
            level, message, values = ERROR, f'unconfigured: configure failed: {self._configure_error}', {}
        else:  # a manager's choice, no fault
            level, message, values = OK, f'{state} (managed node): not serving until activated', {}
        if self.pipeline is not None:
            info = self.pipeline.info
            values.update(backend=self.params.backend, model=info.model_name,
                          model_input=f'{info.input_width}x{info.input_height}')
        if self.managed:
            values['lifecycle_state'] = state
        # one status per node and camera, as camera drivers do: '/front/mono_depth_node: depth' and
        # /rear's are told apart by name (diagnostic_aggregator's key), the camera by hardware_id
        status = DiagnosticStatus(level=bytes([level]), name=f'{self.get_fully_qualified_name()}: depth',
                                  message=message,
                                  hardware_id=self.get_parameter('hardware_id').value or self._frame_id,
                                  values=[KeyValue(key=k, value=v) for k, v in values.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()  # ROS time, as every stamp (0 until /clock)
        self.pub_diag.publish(array)

    def destroy_node(self):
        self._stop_worker()  # the frame in progress finishes while the context is valid
        return super().destroy_node()
