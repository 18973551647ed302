"""depth_kd_ros runtime: metric depth and point clouds from one camera (no torch at import)."""
