"""Errors a user can meet. Each message names the file or key and says what to do."""


class DLCPlatformError(Exception):
    """Base class of every error raised on bad input."""


class SessionError(DLCPlatformError):
    """A session folder, its session.yaml or its timestamps are invalid."""


class VideoError(DLCPlatformError):
    """A video is missing, unreadable, truncated or empty."""


class DLCFileError(DLCPlatformError):
    """A DeepLabCut output (h5, csv, pickle) is missing, corrupt or from another model."""


class RegistryError(DLCPlatformError):
    """The model/method registry or a DLC project is invalid."""


class ModelNotAvailableError(DLCPlatformError):
    """A registered model's project or snapshot is not on this worker."""


class InferenceError(DLCPlatformError):
    """DeepLabCut inference failed or was asked for something this worker cannot do."""


class ProcessingError(DLCPlatformError):
    """Predictions cannot be turned into a state vector or processed tracking."""


class WarehouseError(DLCPlatformError):
    """A table, partition or DataFrame does not fit the warehouse."""
