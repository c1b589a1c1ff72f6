"""Retention: old readings deleted, training data kept (stethoscope-prune).

Nothing here is served; the console script and the systemd timer in
config/systemd/ run it.
"""
