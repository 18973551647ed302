"""config/mono_depth.rviz cannot rot unseen (style item 14). The launch file itself is run for real, with
`ros2 launch` on a colcon-built workspace, in test/launch (its arguments: test_colcon_build.py)."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_rviz_config_shows_colored_depth_and_points_in_the_optical_frame():
    """The rviz config is YAML with an Image of depth/colored and a PointCloud2 of points (relative topics)."""
    config = yaml.safe_load((ROOT / 'config' / 'mono_depth.rviz').read_text())
    manager = config['Visualization Manager']
    topics = {d['Class']: d.get('Topic', {}).get('Value') for d in manager['Displays']}
    assert topics['rviz_default_plugins/Image'] == 'depth/colored'
    assert topics['rviz_default_plugins/PointCloud2'] == 'points'
    assert manager['Global Options']['Fixed Frame'] == 'camera_optical_frame'
