"""scripts/fix_ros_wheel_cmake.py: the ROS wheels' exported CMake files get this environment's paths, once."""
import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / 'scripts' / 'fix_ros_wheel_cmake.py'
spec = importlib.util.spec_from_file_location('fix_ros_wheel_cmake', SCRIPT)
fix_ros_wheel_cmake = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fix_ros_wheel_cmake)

# the line as the ros-std-msgs 5.3.6 wheel ships it
WHEEL_LINE = ('  INTERFACE_INCLUDE_DIRECTORIES "/opt/python/cp311-cp311/include/python3.11;'
              '/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include"\n')


def test_builder_paths_become_the_environments_and_a_second_run_changes_nothing(tmp_path):
    export = tmp_path / 'std_msgs' / 'cmake' / 'export_std_msgs__rosidl_generator_pyExport.cmake'
    export.parent.mkdir(parents=True)
    export.write_text(WHEEL_LINE)
    relative = tmp_path / 'rosidl_generator_c' / 'cmake' / 'extras.cmake'  # relative paths are left alone
    relative.parent.mkdir(parents=True)
    relative.write_text('"${rosidl_generator_c_DIR}/../../../lib/python3.11/site-packages/x.py"\n')
    include, purelib = '/venv/include/python3.11', '/venv/lib/python3.11/site-packages'

    assert fix_ros_wheel_cmake.fix_cmake_files(tmp_path, include, purelib) == [export]
    assert export.read_text() == ('  INTERFACE_INCLUDE_DIRECTORIES "/venv/include/python3.11;'
                                  '/venv/lib/python3.11/site-packages/numpy/_core/include"\n')
    assert fix_ros_wheel_cmake.fix_cmake_files(tmp_path, include, purelib) == []
