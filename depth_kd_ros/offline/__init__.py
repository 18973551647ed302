"""mono_depth_offline: the command line (cli.py) and its sub-commands ``bag`` (bag.py) and ``images``
(images.py), on the shared run helpers (run.py) and the three-thread overlap (overlapped.py). Nothing in the
package imports it."""
