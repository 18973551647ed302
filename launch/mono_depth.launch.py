"""Launch mono_depth_node (and optionally rviz2) for a camera: metric depth and point clouds.

Example:
    ros2 launch depth_kd_ros mono_depth.launch.py model_path:=/models/student.onnx backend:=tensorrt \
        image_topic:=/camera/color/image_raw camera_info_topic:=/camera/color/camera_info rviz:=true
The params file (default: the package's config/mono_depth.yaml, section ``mono_depth_node:``) is read
and validated here with depth_kd_ros.params, then passed as a dict, so it applies under any namespace.
The node is the launch's reason to exist: when it exits, the launch ends (rviz with it), and when it could
not start (exit code 2: a missing or broken model, a bad parameter) `ros2 launch` exits non-zero, so a
supervisor (systemd, a bring-up script) sees the failure. rviz:=true without rviz2 installed fails before
anything starts.

managed:=true starts it as a lifecycle node (launch_ros LifecycleNode: `ros2 launch` tooling and a Nav2 lifecycle
manager drive its transitions); it stays unconfigured unless autostart:=true, which configures it and, once
that succeeded, activates it once, as Nav2's lifecycle manager does with autostart. A failed configure is the
node's one error line; the node then stays up, unconfigured.
"""
from pathlib import Path

from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler, Shutdown
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

from depth_kd_ros.params import SPECS, load_params_file
from launch import LaunchDescription


def _share_dir() -> Path:
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        return Path(__file__).resolve().parents[1]
    try:
        return Path(get_package_share_directory('depth_kd_ros'))
    except PackageNotFoundError:  # run from the source tree
        return Path(__file__).resolve().parents[1]


def _end_launch_on_node_exit(event, context):
    """ProcessExited of mono_depth_node: end the whole launch; a non-zero exit makes `ros2 launch` exit 1.

    launch returns a non-zero code only for an exception raised while it runs (LaunchService.run_async),
    and a Shutdown action would exit 0; so a failure is raised, and launch logs it and shuts down the rest.
    """
    if context.is_shutdown:
        return None  # Ctrl-C or another shutdown: the launch is ending anyway
    if event.returncode != 0:
        raise RuntimeError(f'{event.action.name} exited with code {event.returncode} (its reason is above); '
                           'ending the launch')
    return Shutdown(reason=f'{event.action.name} exited')


def _require_rviz2() -> None:
    """rviz:=true needs rviz2; checked before any process starts, so a failure leaves nothing running."""
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix
    try:
        get_package_prefix('rviz2')
    except PackageNotFoundError:
        raise RuntimeError('rviz:=true but rviz2 is not installed: install it (apt install ros-$ROS_DISTRO-rviz2) '
                           'or launch with rviz:=false') from None


def _autostart(node: LifecycleNode) -> list:
    """Configure ``node`` now (the request waits for its change_state service) and activate it when that
    configure succeeded, once: a later deactivate, or a configure by a manager, is left alone."""
    def change_state(transition_id: int) -> EmitEvent:
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition_id))

    return [RegisterEventHandler(OnStateTransition(target_lifecycle_node=node, start_state='configuring',
                                                   goal_state='inactive', handle_once=True,
                                                   entities=[change_state(Transition.TRANSITION_ACTIVATE)])),
            change_state(Transition.TRANSITION_CONFIGURE)]


def _launch_setup(context, *args, **kwargs):
    def arg(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    params = load_params_file(arg('params_file'))
    overrides = {name: arg(name) for name in ('model_path', 'backend') if arg(name)}
    managed = arg('managed') == 'true'
    params = params.replace(**overrides, managed=managed)  # validated: a bad value stops the launch with its name
    rviz = arg('rviz').lower() in ('true', '1', 'yes')
    if rviz:
        _require_rviz2()
    image_topic, namespace = arg('image_topic'), arg('namespace')
    node = (LifecycleNode if managed else Node)(
        package='depth_kd_ros', executable='mono_depth_node', name='mono_depth_node', namespace=namespace,
        output='screen', parameters=[params.as_dict()],
        remappings=[('image', image_topic), ('image/compressed', image_topic + '/compressed'),
                    ('camera_info', arg('camera_info_topic'))],
        on_exit=_end_launch_on_node_exit)
    actions = [node]
    if managed and arg('autostart') == 'true':
        actions += _autostart(node)
    if rviz:
        actions.append(Node(package='rviz2', executable='rviz2', name='mono_depth_rviz', namespace=namespace,
                            arguments=['-d', str(_share_dir() / 'config' / 'mono_depth.rviz')]))
    return actions


def generate_launch_description() -> LaunchDescription:
    """Arguments: model_path, backend, image_topic, camera_info_topic, namespace, params_file, rviz, managed,
    autostart."""
    return LaunchDescription([
        DeclareLaunchArgument('model_path', default_value='',
                              description='Model file (.onnx, or .pt2 for torch); overrides the params file'),
        DeclareLaunchArgument('backend', default_value='', choices=['', *SPECS['backend'].metadata['choices']],
                              description='Inference backend; empty keeps the params file value'),
        DeclareLaunchArgument('image_topic', default_value='image', description='Input sensor_msgs/Image topic'),
        DeclareLaunchArgument('camera_info_topic', default_value='camera_info',
                              description='Input sensor_msgs/CameraInfo topic'),
        DeclareLaunchArgument('namespace', default_value='', description='Namespace of the node and its outputs'),
        DeclareLaunchArgument('params_file', default_value=str(_share_dir() / 'config' / 'mono_depth.yaml'),
                              description='ROS 2 params file with a mono_depth_node: ros__parameters: section'),
        DeclareLaunchArgument('rviz', default_value='false', choices=['true', 'false'],
                              description='Start rviz2 with config/mono_depth.rviz'),
        DeclareLaunchArgument('managed', default_value='false', choices=['true', 'false'],
                              description='Lifecycle (managed) node: starts unconfigured (docs/node.md: Managed node)'),
        DeclareLaunchArgument('autostart', default_value='false', choices=['true', 'false'],
                              description='With managed:=true, configure and then activate it at launch (else a '
                              'lifecycle manager or `ros2 lifecycle set` does)'),
        OpaqueFunction(function=_launch_setup),
    ])
