"""Bytes and files <-> arrays: image and depth codecs, image headers, image files, rosbag2 reading and writing,
atomic writes and the package's shipped files. No model, no camera: imports nothing else of the package."""
