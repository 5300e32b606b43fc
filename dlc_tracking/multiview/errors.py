"""The error multi-camera input raises: a SessionError, so the assets report it like any
other bad session file (the file, the recording, what to do) and write nothing."""

from dlc_tracking.errors import SessionError


class MultiviewError(SessionError):
    """A rig, a calibration, a camera's video or 2D predictions are unusable as given."""
