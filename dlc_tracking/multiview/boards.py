"""Calibration boards: ChArUco and checkerboard, as aniposelib detects them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from dlc_tracking.multiview.errors import MultiviewError

__all__ = ["Board"]


@dataclass(frozen=True)
class Board:
    """A printed calibration board.

    Attributes
    ----------
    kind : {"charuco", "checkerboard"}
        ChArUco (OpenCV's aruco dictionary, identifiable corners, partial views usable) or
        a plain checkerboard (the whole board must be seen).
    squares_x, squares_y : int
        ChArUco: squares along x and y. Checkerboard: *inner corners* along x and y
        (OpenCV's pattern size), as aniposelib's ``Checkerboard`` takes them.
    square_mm : float
        Side of one square in millimetres; sets the unit of the calibration (mm).
    marker_mm : float, optional
        ChArUco marker side (mm).
    marker_bits, dict_size : int
        ChArUco dictionary, e.g. 4 bits x 50 markers = ``DICT_4X4_50``.
    """

    kind: Literal["charuco", "checkerboard"] = "charuco"
    squares_x: int = 7
    squares_y: int = 5
    square_mm: float = 40.0
    marker_mm: float | None = 30.0
    marker_bits: int = 4
    dict_size: int = 50

    def __post_init__(self) -> None:
        if self.kind not in ("charuco", "checkerboard"):
            raise MultiviewError(f"calibration board kind {self.kind!r}: use 'charuco' or "
                                 "'checkerboard'.")
        if min(self.squares_x, self.squares_y) < 2 or not self.square_mm > 0:
            raise MultiviewError(
                f"calibration board {self}: squares_x and squares_y must be >= 2 and "
                "square_mm > 0 (measure the printed square with a ruler).")
        if self.kind == "charuco" and not (self.marker_mm and 0 < self.marker_mm
                                           < self.square_mm):
            raise MultiviewError(
                f"ChArUco board: marker_mm {self.marker_mm!r} must be > 0 and smaller than "
                f"square_mm {self.square_mm}.")

    def to_aniposelib(self) -> Any:
        """aniposelib's ``CharucoBoard`` or ``Checkerboard`` (lengths in mm)."""
        from aniposelib.boards import CharucoBoard, Checkerboard

        if self.kind == "checkerboard":
            return Checkerboard(self.squares_x, self.squares_y, square_length=self.square_mm)
        return CharucoBoard(self.squares_x, self.squares_y, self.square_mm, self.marker_mm,
                            marker_bits=self.marker_bits, dict_size=self.dict_size)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Board:
        """Build from :meth:`to_dict` output (or a registry entry)."""
        try:
            return cls(**dict(data))
        except TypeError as exc:
            raise MultiviewError(f"calibration board {data!r}: {exc}; keys are kind, "
                                 "squares_x, squares_y, square_mm, marker_mm, marker_bits, "
                                 "dict_size.") from None
