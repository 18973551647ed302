"""Datasets: KITTI Eigen, NYU-Depth v2, embedded synthetic scenes."""
