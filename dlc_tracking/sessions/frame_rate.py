"""One decision on a recording's frame rate, from everything that states one.

Three sources may state a video's frame rate: the session's ``session.yaml`` (``fps:``
for the session, or ``fps:`` in the video's ``videos:`` entry, which wins), the video
container, and DeepLabCut's metadata pickle next to its outputs (``_meta.pickle``, or
``includingmetadata.pickle`` before DLC 2.2). Every speed is divided by the frame rate,
so a wrong one is never applied in silence:

- a declared rate (session.yaml) is used, whether or not the video is here;
- otherwise the container's rate, when the video is here;
- otherwise the rate in DLC's metadata;
- any other source that differs from the rate used by more than the tolerance (1 %)
  gives a warning naming both values and where each comes from (or, with
  ``on_conflict="refuse"``, a refusal).

See docs/sessions.md, "Frame rate".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dlc_tracking.errors import SessionError

__all__ = ["FPS_TOLERANCE", "FrameRate", "dlc_metadata_fps", "reconcile_fps"]

FPS_TOLERANCE = 0.01
"""Relative difference between two stated frame rates still taken as agreement."""


@dataclass(frozen=True)
class FrameRate:
    """The frame rate a recording uses, and what every source said.

    Attributes
    ----------
    fps : float
        The rate used (Hz).
    source : str
        ``"session.yaml"``, ``"video"`` or ``"dlc_metadata"``.
    stated : dict[str, float]
        Each source's rate, where it states one.
    warnings : tuple[str, ...]
        One sentence per source that disagrees with the rate used (both values named).
    """

    fps: float
    source: str
    stated: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def _differs(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) > tolerance * max(abs(b), 1e-12)


def reconcile_fps(*, declared: float | None, container: float | None,
                  dlc_metadata: float | None, where: str, declared_in: str = "session.yaml",
                  tolerance: float = FPS_TOLERANCE, on_conflict: str = "warn") -> FrameRate:
    """Decide a recording's frame rate (see the module for the rule).

    Parameters
    ----------
    declared : float or None
        ``fps`` from session.yaml (the video's entry, else the session's).
    container : float or None
        The video container's rate (None when the video is not here).
    dlc_metadata : float or None
        The rate in DLC's metadata pickle of the outputs (None when there is none).
    where : str
        The recording (and file) for the messages.
    declared_in : str
        Where ``declared`` is written, for the messages.
    tolerance : float
        Relative difference still taken as agreement.
    on_conflict : str
        ``"warn"`` (default): use the rate by the rule and warn; ``"refuse"``: raise.

    Returns
    -------
    FrameRate

    Raises
    ------
    SessionError
        No source states a rate; a rate that is not positive; a conflict with
        ``on_conflict="refuse"``. The message names both values and the fix.
    """
    if on_conflict not in ("warn", "refuse"):
        raise ValueError(f"on_conflict must be 'warn' or 'refuse', got {on_conflict!r}")
    names = {"session.yaml": declared_in, "video": "the video container",
             "dlc_metadata": "DeepLabCut's metadata (_meta.pickle)"}
    stated = {k: float(v) for k, v in (("session.yaml", declared), ("video", container),
                                       ("dlc_metadata", dlc_metadata)) if v is not None}
    for source, value in stated.items():
        if not value > 0:
            raise SessionError(f"{where}: {names[source]} states a frame rate of {value:g}; "
                               "it must be positive. Fix the file, or declare `fps:` in "
                               "session.yaml.")
    if not stated:
        raise SessionError(
            f"{where}: no frame rate is known (no video here, no `fps:` in session.yaml, no "
            "DLC metadata pickle with the outputs). Declare `fps:` in session.yaml.")
    source = next(s for s in ("session.yaml", "video", "dlc_metadata") if s in stated)
    fps = stated[source]
    warnings = []
    for other, value in stated.items():
        if other != source and _differs(value, fps, tolerance):
            warnings.append(
                f"{where}: frame rate {fps:g} fps from {names[source]} is used, but "
                f"{names[other]} says {value:g} fps (ratio {value / fps:.3g}: speeds would "
                f"be off by that factor if the wrong one is used). Check which is right; "
                f"declare the true rate as `fps:` in {declared_in} or give a per-frame "
                "timestamps file, then reprocess.")
    if warnings and on_conflict == "refuse":
        raise SessionError(" ".join(warnings))
    return FrameRate(fps, source, stated, tuple(warnings))


def dlc_metadata_fps(folder: Path) -> float | None:
    """The frame rate DLC's metadata pickles state for the outputs in ``folder`` (None
    when there are none, or they state none; the first set's when they disagree, which
    ingestion refuses with its own message)."""
    from dlc_tracking.errors import DLCPlatformError
    from dlc_tracking.io.dlc_files import find_output_sets, read_metadata

    if not Path(folder).is_dir():
        return None
    try:
        for output_set in find_output_sets(folder):
            if output_set.metadata_path is not None:
                fps = read_metadata(output_set.metadata_path).get("fps")
                if fps:
                    return float(fps)
    except DLCPlatformError:  # unreadable outputs: ingestion reports them
        return None
    return None
