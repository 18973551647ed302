"""mono_depth_node: the ROS 2 node (mono_depth_node.py), its process (process.py), the keep-latest worker and the
/diagnostics statistics. The only part of the package that imports rclpy; nothing in the package imports it."""
