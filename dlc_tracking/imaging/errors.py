"""The error imaging input raises: a SessionError, so the assets report it like any other
bad session file (the file, the recording, what to do) and write nothing."""

from dlc_tracking.errors import SessionError


class ImagingError(SessionError):
    """A ScanImage tif, ops.npy, frame-times or sync file is unusable as given."""
