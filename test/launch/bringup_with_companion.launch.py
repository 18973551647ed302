"""A robot bring-up in miniature for test_mono_depth_launch.py: the package's launch file and a companion.

The companion is a long-running process standing in for rviz2 or a camera driver (none is installed here);
when mono_depth_node cannot start, the whole launch must end with it, companion included.
Argument: model_path (passed to mono_depth.launch.py).
"""
import sys

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    mono_depth = f'{get_package_share_directory("depth_kd_ros")}/launch/mono_depth.launch.py'
    return LaunchDescription([
        DeclareLaunchArgument('model_path'),
        ExecuteProcess(cmd=[sys.executable, '-c', 'import time; time.sleep(600)'], name='companion'),
        IncludeLaunchDescription(PythonLaunchDescriptionSource(mono_depth),
                                 launch_arguments={'model_path': LaunchConfiguration('model_path')}.items()),
    ])
