"""The camera of a frame: its pinhole model (K), its calibration (CameraInfo fields, ROS calibration files),
rectification, pairing a frame with the camera_info of its stamp, and back-projection to points.

Imports only io/ of the package."""
