"""The error multi-camera input raises: a SessionError, so the assets report it like any
other bad session file (the file, the recording, what to do) and write nothing."""

from dlc_tracking.errors import SessionError


class MultiviewError(SessionError):
    """A rig, a calibration, a camera's video or 2D predictions are unusable as given."""


class CalibrationPending(MultiviewError):
    """The rig's calibration for the session's date is on disk as board videos but not
    calibrated yet (its ``camera_calibrations`` partition has not been materialized).

    Attributes
    ----------
    key : str
        The partition, ``<rig>__<YYYY-MM-DD>``.
    result_path : pathlib.Path
        Where the calibration will be stored once materialized.
    """

    def __init__(self, message: str, key: str, result_path):
        super().__init__(message)
        self.key = key
        self.result_path = result_path
