"""ament_python package: installs only the runtime (depth_kd_ros/), never the training code."""
from glob import glob

from setuptools import find_packages, setup

package_name = 'depth_kd_ros'

setup(
    name=package_name,
    version='0.1.0',
    # depth_kd_ros.testing: the tests' and benchmarks' synthetic model, never shipped to a robot
    packages=find_packages(exclude=['test', 'test.*', 'training', 'training.*', 'depth_kd_ros.testing']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.launch.py')),
        ('share/' + package_name + '/config', glob('config/*.yaml') + glob('config/*.rviz') + glob('config/*.xml')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='depth_kd_ros developers',
    maintainer_email='dev@depth-kd-ros.invalid',
    description='Metric monocular depth and point clouds from a distilled CNN student.',
    license='Apache-2.0',
    python_requires='>=3.10',
    entry_points={
        'console_scripts': [
            'mono_depth_node = depth_kd_ros.node.process:main',
            'mono_depth_offline = depth_kd_ros.offline.cli:main',
        ],
    },
)
