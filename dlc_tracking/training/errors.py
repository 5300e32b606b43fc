"""Errors of the model lifecycle. Each message names the file or the model and the fix."""

from dlc_tracking.errors import DLCPlatformError


class TrainingError(DLCPlatformError):
    """Training parameters, a training plan or a training run are invalid or failed."""


class LabeledDataError(TrainingError):
    """A DLC project's labeled-data cannot make a training dataset (none, bad body parts,
    missing images, unrefined machine labels)."""


class EvaluationError(DLCPlatformError):
    """A model cannot be evaluated (snapshot or training dataset missing) or evaluation
    failed."""
