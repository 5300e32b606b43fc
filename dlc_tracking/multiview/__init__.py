"""Multi-camera 3D: rigs, calibration, synchronisation, triangulation, head orientation.

Plain Python (never imports Dagster); aniposelib does the camera geometry.
"""
