"""The ``imaging:`` block of session.yaml (documented in docs/imaging.md and
docs/sessions.md). Paths are relative to the session folder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

__all__ = ["ImagingConfig", "SyncConfig", "parse_timezone"]


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


class SyncConfig(BaseModel):
    """Camera and imaging TTL times on one DAQ clock: ``file`` (CSV ``signal,time_s``), or
    ``camera`` + ``imaging`` files (CSV/NPY of seconds), or ``nwb`` with ``camera`` +
    ``imaging`` naming two TimeSeries."""

    model_config = ConfigDict(extra="forbid")

    file: str | None = Field(default=None, description="CSV with columns signal,time_s")
    camera: str | None = Field(default=None, description="Camera TTL times file, or the "
                               "camera TimeSeries name with `nwb`")
    imaging: str | None = Field(default=None, description="Imaging TTL times file, or the "
                                "imaging TimeSeries name with `nwb`")
    nwb: str | None = Field(default=None, description="NWB file holding both TimeSeries")

    @model_validator(mode="after")
    def _one_form(self) -> SyncConfig:
        if self.file is not None:
            if self.camera or self.imaging or self.nwb:
                raise ValueError("sync: give `file` alone, or `camera` + `imaging` "
                                 "(with `nwb` for TimeSeries names)")
        elif not (self.camera and self.imaging):
            raise ValueError("sync: needs `file` (CSV signal,time_s), or both `camera` and "
                             "`imaging`")
        return self


class ImagingConfig(BaseModel):
    """The session's imaging: at least one of ``scanimage``, ``suite2p``, ``frame_times``."""

    model_config = ConfigDict(extra="forbid")

    scanimage: Annotated[list[str] | None, BeforeValidator(_as_list)] = Field(
        default=None, description="ScanImage tif(s) of one acquisition, in acquisition order")
    suite2p: str | None = Field(default=None, description="Suite2p output folder "
                                "(plane*/ops.npy)")
    frame_times: str | None = Field(default=None, description="CSV/NPY of imaging frame "
                                    "times, seconds from the session's start_time")
    timezone: str | None = Field(default=None, description="Time zone of the microscope "
                                 "computer's clock (IANA name or +HH:MM); default: "
                                 "start_time's")
    sync: SyncConfig | None = None
    max_sample_distance_frames: float = Field(
        default=2.0, gt=0, description="An imaging frame whose nearest video frame is farther "
        "than this many video frame intervals is not valid")
    duration_tolerance_s: float = Field(default=2.0, ge=0, description="Imaging may end "
                                        "this much after (or before) the video")
    max_clock_offset_s: float = Field(default=1.0, ge=0, description="Largest accepted "
                                      "difference between start_time and the imaging start")
    frame_rate_tolerance: float = Field(default=0.01, ge=0, description="Relative difference "
                                        "between measured and header frame rates")

    @model_validator(mode="after")
    def _has_source(self) -> ImagingConfig:
        if not (self.scanimage or self.suite2p or self.frame_times):
            raise ValueError("imaging: name `scanimage` (tif files), `suite2p` (folder) or "
                             "`frame_times` (CSV/NPY)")
        if self.scanimage and self.frame_times:
            raise ValueError("imaging: `scanimage` and `frame_times` both give frame times; "
                             "keep one")
        if self.timezone is not None:
            parse_timezone(self.timezone)
        return self


def epoch_zone(timezone_name: str | None, declared: datetime | None, where: str) -> tzinfo:
    """The time zone of ScanImage's ``epoch`` (the microscope computer's local time): the
    one given (``imaging: timezone:``, ``--tif-timezone``), else the declared start
    time's.

    Raises
    ------
    ImagingError
        An unknown name, or none given and no declared start with a zone.
    """
    from dlc_tracking.imaging.errors import ImagingError

    if timezone_name is not None:
        try:
            return parse_timezone(timezone_name)
        except ValueError as exc:
            raise ImagingError(f"{where}: {exc}") from exc
    if declared is not None and declared.tzinfo is not None:
        return declared.tzinfo
    raise ImagingError(
        f"{where}: ScanImage's `epoch` is the microscope computer's local time with no time "
        "zone; give the zone (`timezone:` under `imaging:` in session.yaml, e.g. Europe/Oslo "
        "or +01:00; --tif-timezone for predict), or a start_time with its zone.")


def parse_timezone(name: str) -> tzinfo:
    """``Europe/Oslo``, ``UTC``, ``+01:00`` or ``Z`` as a tzinfo.

    Raises
    ------
    ValueError
        An unknown name.
    """
    text = name.strip()
    if text in ("Z", "UTC", "utc"):
        return UTC
    if text[:1] in "+-" and len(text) in (6, 3):
        sign = -1 if text[0] == "-" else 1
        hours, _, minutes = text[1:].partition(":")
        try:
            return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes or 0)))
        except ValueError as exc:
            raise ValueError(f"timezone {name!r} is not +HH:MM") from exc
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"timezone {name!r} is not an IANA name (e.g. Europe/Oslo) or "
                         "+HH:MM") from exc
