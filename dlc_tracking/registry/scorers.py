"""DLC scorer names: every form DeepLabCut has written, split into what they say.

DeepLabCut names its outputs ``<video stem><scorer>.h5`` and stores the scorer as the top
column level. The scorer encodes the model (DeepLabCut 3.0.2 source,
``utils.auxiliaryfunctions.get_scorer_name`` and
``pose_estimation_pytorch.apis.utils.get_scorer_name`` / ``get_scorer_uid``):

- DLC 2.0 / 2.1 (TensorFlow): ``DeepCut_resnet50_<task><date>shuffle<N>_<iterations>``;
- DLC 2.2+ (TensorFlow): ``DLC_<net>_<task><date>shuffle<N>_<iterations>`` with
  ``<net>`` ``resnet50``, ``resnet101``, ``resnet152``, ``mobnet_100``, ``mobnet_35``,
  ``effnet_b0``, ``dlcrnetms5``... (older releases wrote e.g. ``efficientnet-b0``);
- DLC 3 (PyTorch): ``DLC_<Net>_<task><date>shuffle<N>_snapshot_<epoch>`` or
  ``..._snapshot_best-<epoch>``, where ``<Net>`` is the net type with each ``_`` part
  capitalised (``resnet_50`` -> ``Resnet50``, ``hrnet_w32`` -> ``HrnetW32``,
  ``top_down_cspnext_s`` -> ``TopDownCspnextS``); top-down models run with a detector
  write ``..._detector_<epoch>_snapshot_<epoch>`` (either may be ``best-<epoch>``).
  The detector's own net is not part of the scorer.

``<task>`` is the project's ``Task`` (any text: underscores, digits, capitals) and
``<date>`` its ``date`` (``%b%-d`` style such as ``Jan1`` or ``Oct22`` when DLC created the
project, but a config may hold any text). Given both from the project's config.yaml the
split is exact; without them it is made on the last month-day token and the result says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from dlc_tracking.errors import RegistryError

__all__ = ["ScorerInfo", "parse_scorer", "snapshot_label", "FORMS", "match_scorer"]

FORMS = (
    "DeepCut_resnet50_<task><date>shuffle<N>_<iterations> (DLC 2.0/2.1)",
    "DLC_<net>_<task><date>shuffle<N>_<iterations> (DLC 2.2+ TensorFlow, e.g. net resnet50, "
    "mobnet_100, effnet_b0, dlcrnetms5)",
    "DLC_<Net>_<task><date>shuffle<N>_snapshot_<epoch> or ..._snapshot_best-<epoch>, "
    "optionally ..._detector_<epoch>_snapshot_<epoch> (DLC 3 PyTorch, e.g. Resnet50, "
    "HrnetW32, TopDownResnet50)",
)
"""The scorer forms accepted, as told to a user whose scorer is refused."""

_MONTH_DAY = re.compile(
    r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)(?:3[01]|[12][0-9]|0?[1-9])$")
# TF nets with an underscore in their abbreviation (mobnet_100, effnet_b0, and resnet_101
# as some tools spell it) come first, so that the underscore is not taken as the net's end.
_NET = r"(?:mobnet|effnet)_[A-Za-z0-9]+|resnet_[0-9]+|[A-Za-z0-9][A-Za-z0-9.\-]*"
_UID = (r"shuffle(?P<shuffle>[0-9]+)_(?:(?P<iterations>[0-9]+)"
        r"|(?:detector_(?P<detector>(?:best-)?[0-9]+)_)?snapshot_(?P<snapshot>(?:best-)?[0-9]+))")


@dataclass(frozen=True)
class ScorerInfo:
    """What a DLC scorer name says about the model that wrote the outputs.

    Attributes
    ----------
    scorer : str
        The scorer exactly as given.
    engine : str
        ``"tensorflow"`` (training iterations) or ``"pytorch"`` (snapshot epoch).
    net_type : str
        The net as written in the scorer (``resnet50``, ``mobnet_100``, ``HrnetW32``...).
    task : str
        The project's ``Task``.
    date : str
        The project's ``date``.
    shuffle : int
        Shuffle number.
    iterations : int or None
        TensorFlow: training iterations of the snapshot; None for PyTorch.
    snapshot_epoch : int or None
        PyTorch: epoch of the pose snapshot; None for TensorFlow.
    snapshot_best : bool
        PyTorch: the snapshot is DLC's ``snapshot-best-<epoch>``.
    legacy : bool
        The DLC 2.0/2.1 ``DeepCut_`` spelling.
    detector_epoch : int or None
        PyTorch top-down models run with a detector: the detector snapshot's epoch.
    detector_best : bool
        The detector snapshot is a ``best`` one.
    split_inferred : bool
        Task and date were told apart by the last month-day token, not given.
    snapshot_missing : bool
        The scorer ends at ``shuffle<N>`` (DLC2NWB's NWB files, neuroconv): no iterations or
        snapshot; the engine is then inferred from the net's spelling (DLC 3 capitalises it).
    notes : tuple[str, ...]
        What was inferred, in words (for logs and metadata).
    """

    scorer: str
    engine: str
    net_type: str
    task: str
    date: str
    shuffle: int
    iterations: int | None = None
    snapshot_epoch: int | None = None
    snapshot_best: bool = False
    legacy: bool = False
    detector_epoch: int | None = None
    detector_best: bool = False
    split_inferred: bool = False
    notes: tuple[str, ...] = field(default=())
    snapshot_missing: bool = False

    @property
    def dlc_scorer(self) -> str:
        """The scorer in DLC 2.2+ spelling (``DeepCut_`` -> ``DLC_``)."""
        return "DLC" + self.scorer[len("DeepCut"):] if self.legacy else self.scorer

    @property
    def legacy_scorer(self) -> str:
        """The scorer in DLC 2.0/2.1 spelling, as DLC itself derives it."""
        return self.dlc_scorer.replace("DLC", "DeepCut", 1)

    @property
    def snapshot_uid(self) -> str:
        """The part after ``shuffle<N>_``: iterations, or DLC 3's snapshot uid ("" when
        the scorer names no snapshot)."""
        if self.snapshot_missing:
            return ""
        if self.engine == "tensorflow":
            return str(self.iterations)
        uid = f"snapshot_{_uid(self.snapshot_epoch, self.snapshot_best)}"
        if self.detector_epoch is not None:
            uid = f"detector_{_uid(self.detector_epoch, self.detector_best)}_{uid}"
        return uid


def _uid(epoch: int | None, best: bool) -> str:
    return f"best-{epoch}" if best else str(epoch)


def _epoch(text: str | None) -> tuple[int | None, bool]:
    """``"best-200"`` -> (200, True); ``"200"`` -> (200, False); None -> (None, False)."""
    if text is None:
        return None, False
    best = text.startswith("best-")
    return int(text.removeprefix("best-")), best


def _refuse(scorer: str, why: str) -> RegistryError:
    forms = "\n  ".join(FORMS)
    return RegistryError(
        f"Cannot read the DLC scorer {scorer!r}: {why}. Scorers accepted:\n  {forms}\n"
        "Fix: give the project's config.yaml with --config so that task and date are "
        "known, or give the scorer exactly as it appears in the DLC output files.")


_NO_SNAPSHOT = re.compile(r"(?:DLC|DeepCut)_.+shuffle[0-9]+")


def parse_scorer(scorer: str, task: str | None = None, date: str | None = None, *,
                 snapshot_optional: bool = False) -> ScorerInfo:
    """Split a DLC scorer name into engine, net, task, date, shuffle and snapshot.

    Parameters
    ----------
    scorer : str
        The scorer, e.g. ``DLC_resnet50_openfieldOct22shuffle1_500000`` or
        ``DLC_Resnet50_openfieldJan1shuffle1_snapshot_best-200``.
    task : str, optional
        The project's ``Task`` (config.yaml); with it the split is exact.
    date : str, optional
        The project's ``date`` (config.yaml); with it the split is exact.
    snapshot_optional : bool
        Also accept a scorer that ends at ``shuffle<N>`` (as DLC2NWB writes it into NWB
        files, e.g. ``DLC_resnet50_openfieldAug20shuffle1``): ``snapshot_missing`` is
        then True, and the engine inferred from the net's spelling.

    Returns
    -------
    ScorerInfo
        The parts; ``split_inferred`` is True when task and date were not both given and the
        date was taken as the last month-day token (``Jan1``...).

    Raises
    ------
    RegistryError
        Not one of DLC's scorer forms, or not matching the given task/date; the message
        names the scorer, the forms accepted and the fix.
    """
    text = str(scorer).strip()
    if snapshot_optional and _NO_SNAPSHOT.fullmatch(text):
        info = parse_scorer(text + "_0", task, date)
        engine = "pytorch" if info.net_type[:1].isupper() else "tensorflow"
        return replace(info, scorer=text, engine=engine, iterations=None,
                       snapshot_missing=True, notes=(*info.notes, (
                           f"the scorer {text!r} names no snapshot (DLC2NWB and neuroconv "
                           "write it without '_<iterations>'); engine "
                           f"{engine} inferred from the net's spelling {info.net_type!r}")))
    match = re.fullmatch(rf"(?P<prefix>DLC|DeepCut)_(?P<net>{_NET})_(?P<body>.+)", text)
    if match is None:
        raise _refuse(scorer, "it does not start with 'DLC_<net>_' or 'DeepCut_<net>_'")
    legacy = match["prefix"] == "DeepCut"
    # The task is free text and may itself look like a net part, so with a known task the
    # net is whatever lies between the prefix and '_<task><date>shuffle'.
    if task is not None:
        pattern = rf"(?P<net>.+?)_(?P<taskdate>{re.escape(task)}"
        pattern += re.escape(date) if date is not None else ".+"
        exact = re.fullmatch(rf"{pattern}){_UID}", text[len(match["prefix"]) + 1:])
        if exact is None:
            raise _refuse(scorer, f"it does not hold the task {task!r}"
                          + (f" and date {date!r}" if date is not None else "")
                          + " followed by 'shuffle<N>_'")
        net, taskdate = exact["net"], exact["taskdate"]
        uid = exact
    else:
        uid = re.fullmatch(rf"(?P<taskdate>.+){_UID}", match["body"])
        if uid is None:
            raise _refuse(scorer, "it does not end in 'shuffle<N>_<iterations>' or "
                          "'shuffle<N>_snapshot_<epoch>'")
        net, taskdate = match["net"], uid["taskdate"]
    task_out, date_out, inferred, notes = _split_task_date(scorer, taskdate, task, date)
    snapshot, best = _epoch(uid["snapshot"])
    detector, detector_best = _epoch(uid["detector"])
    iterations = int(uid["iterations"]) if uid["iterations"] is not None else None
    return ScorerInfo(
        scorer=text, engine="tensorflow" if iterations is not None else "pytorch",
        net_type=net, task=task_out, date=date_out, shuffle=int(uid["shuffle"]),
        iterations=iterations, snapshot_epoch=snapshot, snapshot_best=best, legacy=legacy,
        detector_epoch=detector, detector_best=detector_best, split_inferred=inferred,
        notes=notes)


def _split_task_date(scorer: str, taskdate: str, task: str | None, date: str | None,
                     ) -> tuple[str, str, bool, tuple[str, ...]]:
    """(task, date, inferred, notes) from the ``<task><date>`` part of a scorer."""
    if task is not None and date is not None:
        return task, date, False, ()
    if task is not None:
        rest = taskdate[len(task):]
        if not rest:
            raise _refuse(scorer, f"nothing follows the task {task!r} to be the date")
        return task, rest, False, (f"date {rest!r} is what follows the given task",)
    if date is not None:
        if not taskdate.endswith(date) or taskdate == date:
            raise _refuse(scorer, f"'{taskdate}' does not end with the date {date!r} "
                          "after a task")
        return taskdate[: -len(date)], date, False, (
            f"task {taskdate[: -len(date)]!r} is what precedes the given date",)
    found = _MONTH_DAY.search(taskdate)
    if found is None or found.start() == 0:
        raise _refuse(scorer, f"task and date cannot be told apart in {taskdate!r} (no "
                      "month-day date such as 'Jan1' after the task)")
    split_task, split_date = taskdate[: found.start()], found.group()
    return split_task, split_date, True, (
        f"task {split_task!r} and date {split_date!r} split on the last month-day token; "
        "give the project's config.yaml to make it exact",)


def match_scorer(found: str, expected: str) -> str | None:
    """Whether outputs with scorer ``found`` were made by the model of scorer ``expected``.

    Equal scorers (or DLC's ``DeepCut_`` spelling of the same) match. A ``found`` without
    the snapshot part (``..shuffle1``, as DLC2NWB writes NWB files) matches a model whose
    net, task, date and shuffle are the same; the missing snapshot is then noted.

    Returns
    -------
    str or None
        None when they do not match; "" for an exact match; else the note to keep with the
        predictions (the snapshot was assumed to be the model's).
    """
    found, expected = str(found).strip(), str(expected).strip()
    if found in (expected, expected.replace("DLC", "DeepCut", 1)):
        return ""
    if not _NO_SNAPSHOT.fullmatch(found):
        return None
    dlc_found = "DLC" + found[len("DeepCut"):] if found.startswith("DeepCut_") else found
    dlc_expected = ("DLC" + expected[len("DeepCut"):] if expected.startswith("DeepCut_")
                    else expected)
    if not dlc_expected.startswith(dlc_found + "_"):
        return None
    try:
        uid = parse_scorer(dlc_expected, snapshot_optional=True).snapshot_uid
    except RegistryError:
        uid = dlc_expected[len(dlc_found) + 1:]
    return (f"scorer {found!r} names no snapshot (DLC2NWB writes it so); matched to the "
            f"model by net, task, date and shuffle, snapshot assumed to be the model's "
            f"({uid or 'unknown'})")


def snapshot_label(info) -> str | None:
    """The snapshot a scorer names: ``snapshot-200`` / ``snapshot-best-50`` (PyTorch, by
    epoch) or ``snapshot-1030000`` (TensorFlow, by training iterations)."""
    if info.snapshot_epoch is not None:
        return f"snapshot-{'best-' if info.snapshot_best else ''}{info.snapshot_epoch}"
    if info.iterations is not None:
        return f"snapshot-{info.iterations}"
    return None
