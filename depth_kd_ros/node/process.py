"""The mono_depth_node process: rclpy's start and stop around MonoDepthNode, the Fast DDS profile, exit codes.

``main`` is the console script: it points Fast DDS at the large-output profile (before rclpy.init creates the
participant), starts rclpy without its signal handlers, spins the node until SIGINT/SIGTERM, an external shutdown
or the lifecycle shutdown, and tears down in the order that keeps the context valid while the worker finishes.
Exit status: 0 on shutdown, 2 with one line when the configuration or the command line is unusable.
"""
from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from depth_kd_ros.io.package_files import share_file
from depth_kd_ros.node.mono_depth_node import CONFIGURATION_ERRORS, MonoDepthNode
from depth_kd_ros.params import NODE_NAME, params_files_in_args, unmatched_section_hint

#: Fast DDS profile for the node's large reliable outputs (the file says why; docs/node.md: Large messages and Fast DDS)
FASTDDS_PROFILE = Path('config') / 'fastdds_large_outputs.xml'
#: what configures Fast DDS already: then the environment's choice is kept
FASTDDS_SETTINGS = ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE', 'FASTDDS_BUILTIN_TRANSPORTS')


class StopSignals:
    """SIGINT and SIGTERM stop the node once, however many arrive, and never interrupt its clean-up.

    Ctrl-C in a terminal reaches the node twice (from the terminal and forwarded by `ros2 launch`); systemd
    and launch send SIGTERM. rclpy's own handlers shut the context down inside the signal, while the worker
    may still be inferring and then publish into a dead context (RCLError: publisher's context is invalid),
    and a second SIGINT raises KeyboardInterrupt in destroy_node (exit -2). These handlers only record the
    request: spin() returns, and main() joins the worker and destroys the node before the context goes.
    While ``interrupting`` (start-up: model loading, a TensorRT engine build) the first signal raises
    KeyboardInterrupt, as Ctrl-C does; spin() and the clean-up turn that off.
    """

    POLL_S = 0.1  # how often spin() looks at the request: Python runs handlers between rclpy waits

    def __init__(self) -> None:
        self.received: int | None = None  # the first signal's number
        self.interrupting = True
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame) -> None:
        # The handlers stay until ignore(): switching the other signal to SIG_IGN in here, while it is already
        # pending (SIGTERM and SIGINT together), made Python report 'OSError: Signal 15 ignored due to race
        # condition' with a traceback, since it runs pending handlers one after another.
        if self.received is not None:
            return  # already stopping
        self.received = signum
        if self.interrupting:
            self.interrupting = False  # one KeyboardInterrupt: a second signal must not interrupt the clean-up
            raise KeyboardInterrupt

    def ignore(self) -> None:
        """From now on both signals are ignored by the OS (after the clean-up): a Python handler would be reset to
        the default at interpreter exit, where a late SIGINT then kills the process (exit -2). signal.signal runs
        the handlers of signals already pending first, so they meet ours."""
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            signal.signal(stop_signal, signal.SIG_IGN)

    def spin(self, executor: SingleThreadedExecutor, finished: Callable[[], bool]) -> None:
        """Run the executor's callbacks until the first SIGINT/SIGTERM, an external shutdown of its context, or
        ``finished()`` (the node's lifecycle shutdown)."""
        self.interrupting = False
        while self.received is None and executor.context.ok() and not finished():
            executor.spin_once(timeout_sec=self.POLL_S)


def _params_file_hint(argv: list[str], node: Node | None) -> str:
    """unmatched_section_hint for the --params-file arguments, with the node's fully qualified name as rcl
    resolved it (namespace and name remaps); without ``node`` (its constructor failed) a bare node of the
    same name tells it."""
    files = params_files_in_args(argv)
    if not files:
        return ''
    probe = node or rclpy.create_node(NODE_NAME)
    try:
        return unmatched_section_hint(files, probe.get_fully_qualified_name())
    finally:
        if node is None:
            probe.destroy_node()


def use_large_output_profile() -> str:
    """Point Fast DDS (2.x: Humble, Jazzy) at FASTDDS_PROFILE unless the environment configures Fast DDS or another
    RMW is chosen; returns the profile's path, or '' when left alone. Fast DDS reads it when rclpy.init creates
    the participant, so this runs before."""
    if (os.environ.get('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp') not in ('rmw_fastrtps_cpp', 'rmw_fastrtps_dynamic_cpp')
            or any(os.environ.get(name) for name in FASTDDS_SETTINGS)
            or os.path.exists('DEFAULT_FASTRTPS_PROFILES.xml')):  # Fast DDS loads that one from the working folder
        return ''
    profile = share_file(FASTDDS_PROFILE)
    if profile is None:
        return ''
    os.environ['FASTRTPS_DEFAULT_PROFILES_FILE'] = str(profile)
    return str(profile)


def main(args=None) -> int:
    """Console script entry: exit 0 on shutdown, 2 with one clear line when the configuration is unusable.

    A params file whose section names this node but does not apply to it (``mono_depth_node:`` for a node
    in a namespace) adds a hint to that line, or is one warning when the node starts anyway.
    """
    argv = sys.argv if args is None else args
    profile = use_large_output_profile()
    try:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except _rclpy.RCLError as exc:  # malformed --ros-args: a missing or unparsable params file, a bad -p or -r
        print(f'mono_depth_node: cannot start: {str(exc).splitlines()[0]}', file=sys.stderr)
        return 2
    executor = SingleThreadedExecutor()  # made before the handlers, so no signal interrupts its construction
    stop = StopSignals()
    node = None
    try:
        node = MonoDepthNode()
        if profile:
            node.get_logger().info(f'Fast DDS profile {profile} (large reliable outputs; set '
                                   'FASTRTPS_DEFAULT_PROFILES_FILE to use your own)')
        hint = _params_file_hint(argv, node)
        if hint:
            node.get_logger().warning(hint)
        executor.add_node(node)
        stop.spin(executor, finished=lambda: node.finalized)
    except (*CONFIGURATION_ERRORS, ParameterException) as exc:
        hint = _params_file_hint(argv, None)
        print(f'mono_depth_node: cannot start: {exc}' + (f'; hint: {hint}' if hint else ''), file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        stop.interrupting = False
        executor.shutdown()
        if node is not None:
            node.destroy_node()  # joins the worker while the context is still valid
        rclpy.try_shutdown()
        stop.ignore()
        if node is not None and node.frame_unfinished:
            # a worker still inside the backend's native run: the interpreter's tear-down would abort under it
            # (std::terminate, SIGABRT), so leave without one; the node and the context are already shut down
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
    return 0


if __name__ == '__main__':
    sys.exit(main())
