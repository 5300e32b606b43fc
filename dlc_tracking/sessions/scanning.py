"""Finding recordings that are new or changed and *settled* (fully copied) on disk.

Pure logic behind the session sensor: given the data root, the state kept from the last
scan and the time, decide which recordings to process. The state is a JSON-able dict;
:class:`ScanStateStore` keeps it in a file and gives the sensor a short token for its
cursor (Dagster stores the cursor with every tick, so a cursor that grows with the
archive would cost megabytes per hour of ticks).

A scan of a session folder whose recordings were all taken costs a few ``stat`` calls:
when the folder's mtime and the size and mtime of every file its recordings depend on
are unchanged since the last scan, it is not read again (:func:`session_signature`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import zlib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from dlc_tracking.errors import DLCPlatformError
from dlc_tracking.sessions.layout import (
    MANUAL_OUTPUT_PREFIX,
    SESSION_FILE,
    TIMESTAMPS_SUFFIX,
    Recording,
    partially_copied,
    recording_id,
    refuse_collisions,
    session_dirs,
    session_recordings,
)

STATE_VERSION = 2
# mtimes younger than this are not trusted to show the next change (coarse file systems)
_RECENT_S = 3.0


@dataclass
class ScanResult:
    # (recording, fingerprint) pairs to run now
    to_process: list[tuple[Recording, str]] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # not settled yet
    deferred: list[str] = field(default_factory=list)  # over the per-scan bound
    removed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    state: dict = field(default_factory=dict)
    sessions_read: int = 0  # session folders read in full (listing changed or work left)
    sessions_unchanged: int = 0


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def recording_files(rec: Recording) -> dict[str, tuple[int, int] | None]:
    """Size and mtime of every file whose change means the recording must be re-run."""
    files = {"video": _stat(rec.video_path), "session.yaml": _stat(rec.session_yaml)}
    if rec.timestamps_path:
        files["timestamps"] = _stat(rec.timestamps_path)
    manual = rec.manual_output_dir
    if manual.is_dir():
        try:
            for entry in sorted(os.scandir(manual), key=lambda e: e.name):
                if entry.is_file() and not entry.name.startswith("."):
                    st = entry.stat()
                    files[f"dlc/{entry.name}"] = (st.st_size, st.st_mtime_ns)
        except OSError:
            files["dlc/"] = None
    return files


def fingerprint(files: dict) -> str:
    """Short digest of :func:`recording_files`; part of each run key (keep it stable)."""
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]


def _stat_text(path: str) -> tuple[str, int]:
    """``size:mtime`` of a path ("-" when absent) and its mtime (0 when absent)."""
    try:
        st = os.stat(path)
    except OSError:
        return "-", 0
    return f"{st.st_size}:{st.st_mtime_ns}", st.st_mtime_ns


def session_signature(session_dir: str, names: list[str]) -> tuple[str, int]:
    """Digest of what a session's recordings depend on, from ``stat`` calls only.

    Covers the folder's own mtime (it changes when an entry is added, removed or
    renamed), session.yaml, and the named entries: videos, timestamps files and
    ``dlc_<stem>/`` folders, whose files are listed and covered too (a file added to
    them changes only their own mtime). Reading a folder listing costs ~20x a ``stat``,
    so only ``dlc_`` folders are listed.

    Parameters
    ----------
    session_dir : str
        The session folder.
    names : list of str
        Entries of the folder the recordings depend on (that existed when it was read).

    Returns
    -------
    (str, int)
        The digest, and the newest mtime seen (ns since the epoch).
    """
    texts = []
    newest = 0
    for path in (session_dir, session_dir + "/" + SESSION_FILE,
                 *(session_dir + "/" + name for name in names)):
        text, mtime = _stat_text(path)
        texts.append(text)
        newest = max(newest, mtime)
    for name in names:
        if name.startswith(MANUAL_OUTPUT_PREFIX):
            try:
                with os.scandir(session_dir + "/" + name) as it:
                    children = sorted(it, key=lambda e: e.name)
                for child in children:
                    st = child.stat()
                    texts.append(f"{child.name}:{st.st_size}:{st.st_mtime_ns}")
                    newest = max(newest, st.st_mtime_ns)
            except OSError:
                texts.append("-")
    digest = hashlib.blake2b("\n".join(texts).encode(), digest_size=8).hexdigest()
    return digest, newest


def _dependencies(rec: Recording) -> list[str]:
    """Names, in the session folder, of the entries a recording depends on (that exist)."""
    names = [rec.video_path.name]
    if rec.timestamps_path is not None:
        names.append(rec.timestamps_path.name)
    if rec.manual_output_dir.is_dir():
        names.append(rec.manual_output_dir.name)
    return names


def _cacheable(session_dir: Path, recordings: list[Recording]) -> bool:
    """True when every file of these recordings lies directly in the session folder, so
    that :func:`session_signature` sees all their changes."""
    return bool(recordings) and all(
        r.video_path.parent == session_dir
        and (r.timestamps_path is None or r.timestamps_path.parent == session_dir)
        and r.timestamps_path in (None, session_dir / (r.video_path.stem + TIMESTAMPS_SUFFIX))
        for r in recordings
    )


def run_key(rid: str, fp: str) -> str:
    """The sensor's run key of one recording in one state of its files."""
    return f"{rid}:{fp}"


def scan(data_root: Path, state: dict | None, now_s: float, settle_s: float,
         max_to_process: int, already_requested: Collection[str] = ()) -> ScanResult:
    """Recordings to process now: new or changed since the last scan, and settled.

    Settled: no partial-copy marker in the session folder, the video is not empty, every
    file is at least ``settle_s`` old, and (when ``settle_s`` > 0) sizes and mtimes are the
    same as the previous scan saw. At most ``max_to_process`` are returned; the rest are
    left for the next scan (they stay "unseen" in the state).

    Parameters
    ----------
    data_root : Path
        ``<data root>/<subject>/<session>/``.
    state : dict or None
        ``ScanResult.state`` of the previous scan (None or {} for the first scan).
    now_s : float
        Current time (seconds since the epoch).
    settle_s : float
        Minimum age of every file of a recording before it is taken.
    max_to_process : int
        Bound on recordings returned per scan.
    already_requested : collection of str
        Run keys (:func:`run_key`) requested before: those recordings count as seen.
        Lets a scan without state (a new or lost one) skip what was processed already,
        instead of spending its per-scan bound on runs Dagster would skip.

    Returns
    -------
    ScanResult
        What to run, what waits and why, and the state for the next scan.
    """
    state = state or {}
    seen: dict[str, str] = dict(state.get("seen", {}))
    pending: dict[str, str] = dict(state.get("pending", {}))
    known: dict[str, list] = state.get("sessions", {}) if state.get("v") == STATE_VERSION else {}
    result = ScanResult()
    problems: list[str] = []
    # session path relative to the root -> [signature, video names, other entries]
    sessions: dict[str, list] = {}
    found: list[tuple[str, str]] = []  # (recording id, where) of every recording on disk
    fresh: list[tuple[Recording, str, list | None]] = []  # (recording, session, cache entry)

    for subject, session, session_dir in session_dirs(data_root, problems):
        key = f"{subject}/{session}"
        entry = known.get(key)
        if entry is not None:
            rids = [recording_id(subject, session, os.path.splitext(v)[0]) for v in entry[1]]
            if (all(rid in seen and rid not in pending for rid in rids)
                    and session_signature(session_dir, entry[1] + entry[2])[0] == entry[0]):
                sessions[key] = entry
                found.extend((rid, session_dir) for rid in rids)
                result.sessions_unchanged += 1
                continue
        result.sessions_read += 1
        before_read = (_stat_text(session_dir)[0],
                       _stat_text(session_dir + "/" + SESSION_FILE)[0])
        n_problems = len(problems)
        recordings = session_recordings(subject, session_dir, problems)
        found.extend((r.recording_id, str(r.video_path)) for r in recordings)
        cached = None
        if len(problems) == n_problems and _cacheable(Path(session_dir), recordings):
            videos = [r.video_path.name for r in recordings]
            others = [n for r in recordings for n in _dependencies(r)[1:]]
            signature, newest_ns = session_signature(session_dir, videos + others)
            # Not trusted: the folder changed while it was read, or a change so recent
            # that a file system with coarse mtimes (NFS, SMB) may not show the next one.
            unchanged = before_read == (_stat_text(session_dir)[0],
                                        _stat_text(session_dir + "/" + SESSION_FILE)[0])
            if unchanged and now_s - newest_ns / 1e9 >= _RECENT_S:
                cached = [signature, videos, others]
        fresh.extend((r, key, cached) for r in recordings)

    collided = refuse_collisions(found, problems)
    result.problems = problems
    present = {rid for rid, _ in found} - collided
    uncacheable = {key for rec, key, cached in fresh
                   if cached is None or rec.recording_id in collided}
    new_pending: dict[str, str] = {}
    for rec, key, cached in fresh:
        rid = rec.recording_id
        if rid in collided:
            continue
        if key not in uncacheable:
            sessions[key] = cached
        files = recording_files(rec)
        fp = fingerprint(files)
        if seen.get(rid) == fp:
            continue
        if already_requested and run_key(rid, fp) in already_requested:
            seen[rid] = fp
            continue
        newest_ns = max((v[1] for v in files.values() if v), default=0)
        video = files.get("video")
        # a recording without its video is settled on its DLC outputs alone
        outputs = [v for k, v in files.items() if k.startswith("dlc/")]
        files_there = (video is not None and video[0] > 0) if rec.has_video else (
            bool(outputs) and all(v is not None and v[0] > 0 for v in outputs))
        settled = (
            files_there and not partially_copied(rec.session_dir)
            and now_s - newest_ns / 1e9 >= settle_s
            and (settle_s <= 0 or pending.get(rid) == fp)
        )
        if not settled:
            new_pending[rid] = fp
            result.waiting.append(rid)
            continue
        if len(result.to_process) >= max_to_process:
            result.deferred.append(rid)
            new_pending[rid] = fp
            continue
        result.to_process.append((rec, fp))
        seen[rid] = fp
    result.removed = sorted(set(seen) - present)
    for rid in result.removed:
        seen.pop(rid, None)
    result.state = {"v": STATE_VERSION, "seen": seen, "pending": new_pending,
                    "sessions": sessions}
    return result


def encode_state(state: dict) -> str:
    """Compact text of a scan state (zlib + base64 JSON)."""
    raw = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
    return base64.b64encode(zlib.compress(raw, 6)).decode()


def decode_state(text: str | None) -> dict:
    """The state from :func:`encode_state`'s text; {} when empty or unreadable."""
    if not text:
        return {}
    try:
        return json.loads(zlib.decompress(base64.b64decode(text)))
    except (ValueError, zlib.error):
        return {}


class ScanStateError(DLCPlatformError):
    """The sensor's scan state cannot be written."""


class ScanStateStore:
    """Scan states kept as files named by their digest; the digest is the sensor cursor.

    A state file is written before the cursor that names it is committed, and never
    changed afterwards: a tick that fails before its cursor is stored leaves the previous
    cursor pointing at the previous, intact state. The newest ``keep`` files are kept.

    Parameters
    ----------
    folder : Path
        Where the state files live (the sensor uses the Dagster instance's storage).
    keep : int
        How many state files to keep.
    """

    PREFIX = "state:"

    def __init__(self, folder: Path, keep: int = 5):
        self.folder = Path(folder)
        self.keep = keep

    def load(self, cursor: str | None) -> tuple[dict, str | None]:
        """The state a cursor names, and a warning when it could not be found.

        Cursors written before states moved to files (inline encoded states) are read too.
        """
        if not cursor:
            return {}, None
        if not cursor.startswith(self.PREFIX):
            return decode_state(cursor), None
        token = cursor[len(self.PREFIX):]
        path = self.folder / f"{token}.json.z"
        try:
            return json.loads(zlib.decompress(path.read_bytes())), None
        except (OSError, ValueError, zlib.error) as exc:
            return {}, (f"scan state {path} named by the sensor cursor cannot be read ({exc}); "
                        "starting from an empty state: every recording is looked at again, "
                        "and run keys keep already processed ones from running twice.")

    def save(self, state: dict) -> str:
        """Write ``state`` (unless an identical one exists) and return its cursor."""
        raw = zlib.compress(json.dumps(state, separators=(",", ":"), sort_keys=True).encode(), 6)
        token = hashlib.blake2b(raw, digest_size=10).hexdigest()
        path = self.folder / f"{token}.json.z"
        try:
            if path.is_file():
                os.utime(path)  # newest again, so pruning keeps it
            else:
                self.folder.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                tmp.write_bytes(raw)
                os.replace(tmp, path)
                self._prune()
        except OSError as exc:
            raise ScanStateError(
                f"cannot write the sensor's scan state {path}: {exc}. Free disk space or "
                "make that folder (under $DAGSTER_HOME/storage) writable; the sensor keeps "
                "its previous cursor and tries again on its next tick.") from exc
        return self.PREFIX + token

    def _prune(self) -> None:
        try:
            files = sorted(self.folder.glob("*.json.z"), key=lambda p: p.stat().st_mtime_ns,
                           reverse=True)
        except OSError:
            return
        # the newest files include the one the committed cursor names; the age guard
        # covers a clock step or a second process sharing the folder
        cutoff = time.time() - 600
        for old in files[self.keep:]:
            try:
                if old.stat().st_mtime < cutoff:
                    old.unlink()
            except OSError:
                pass
