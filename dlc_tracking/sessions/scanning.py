"""Finding recordings that are new or changed and *settled* (fully copied) on disk.

Pure logic behind the session sensor: given the data root, the state kept from the last
scan and the time, decide which recordings to process. The state is a JSON-able dict;
:class:`ScanStateStore` keeps it in a file and gives the sensor a short token for its
cursor (Dagster stores the cursor with every tick, so a cursor that grows with the
archive would cost megabytes per hour of ticks).

A scan of a session folder whose recordings were all taken costs a few ``stat`` calls:
when the folder's mtime and the size and mtime of every file its recordings depend on
are unchanged since the last scan, it is not read again (:func:`session_signature`).
A tick that changes nothing neither re-reads nor re-writes the state file: the store
keeps the last state in memory beside the file's name (:class:`ScanStateStore`).
"""

from __future__ import annotations

import base64
import contextlib
import gc
import hashlib
import json
import os
import time
import zlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dlc_tracking.errors import DLCPlatformError
from dlc_tracking.io.yaml_files import SAFE_LOADER
from dlc_tracking.sessions.layout import (
    MANUAL_OUTPUT_PREFIX,
    SESSION_FILE,
    TIMESTAMPS_SUFFIX,
    Recording,
    partially_copied,
    refuse_collisions,
    session_dirs,
    session_recordings,
)
from dlc_tracking.sessions.lifecycle import empty_videos

STATE_VERSION = 3
# hash() of a tuple of integers, which session signatures use: a state written by a Python
# whose tuple hash differs has incomparable signatures
HASH_PROBE = hash((-1, 0, 1, 4096, 1_767_600_000_123_456_789))
# mtimes younger than this are not trusted to show the next change (coarse file systems)
_RECENT_S = 3.0


@dataclass
class ScanResult:
    # (recording, fingerprint) pairs to run now
    to_process: list[tuple[Recording, str]] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # not settled yet
    empty: list[str] = field(default_factory=list)  # 0-byte video past the settle time
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


# A path under `imaging:` may lie in a subfolder (suite2p/plane0/ops.npy); the session
# cache joins names with "/", so inside one name "/" is stored as this character.
_SUBPATH = "\x1f"


def imaging_files(session_dir: Path | str) -> list[str]:
    """The files session.yaml's ``imaging:`` names, relative to the session folder:
    ScanImage tifs, the frame-times file, sync files, the Suite2p folder and its
    ``plane*/ops.npy``. A change to any of them re-runs the session's recordings.

    Read leniently (full validation comes with the recording): [] for a session.yaml
    without ``imaging:`` (found by a text search, so other sessions pay nothing more
    than that) or one that does not parse.
    """
    try:
        text = (Path(session_dir) / SESSION_FILE).read_text()
        if "imaging" not in text:
            return []
        raw = yaml.load(text, Loader=SAFE_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    imaging = raw.get("imaging") if isinstance(raw, dict) else None
    if not isinstance(imaging, dict):
        return []
    names: list[str] = []
    tifs = imaging.get("scanimage")
    names += [t for t in ([tifs] if isinstance(tifs, str) else tifs or []) if isinstance(t, str)]
    if isinstance(imaging.get("frame_times"), str):
        names.append(imaging["frame_times"])
    sync = imaging.get("sync")
    if isinstance(sync, dict):
        names += [sync[k] for k in ("file", "nwb") if isinstance(sync.get(k), str)]
        if not isinstance(sync.get("nwb"), str):  # with nwb, camera/imaging are series names
            names += [sync[k] for k in ("camera", "imaging") if isinstance(sync.get(k), str)]
    folder = imaging.get("suite2p")
    if isinstance(folder, str):
        names.append(folder)
        base = Path(session_dir) / folder
        with contextlib.suppress(OSError):
            names += sorted(str(p.relative_to(session_dir))
                            for p in base.glob("plane*/ops.npy"))
    return list(dict.fromkeys(os.path.normpath(n) for n in names))


def recording_files(rec: Recording, imaging: list[str] | None = None
                    ) -> dict[str, tuple[int, int] | None]:
    """Size and mtime of every file whose change means the recording must be re-run.

    ``imaging``: :func:`imaging_files` of its session (read here when None).
    """
    files = {"video": _stat(rec.video_path), "session.yaml": _stat(rec.session_yaml)}
    if rec.timestamps_path:
        files["timestamps"] = _stat(rec.timestamps_path)
    for name in imaging_files(rec.session_dir) if imaging is None else imaging:
        files[f"imaging/{name}"] = _stat(rec.session_dir / name)
    if rec.cameras:
        # Every camera's video, frame times and DLC outputs (the first camera's video is
        # also "video", which the settle rule reads).
        for cam in rec.cameras:
            files[f"video/{cam.camera}"] = _stat(cam.video_path)
            if cam.timestamps_path:
                files[f"timestamps/{cam.camera}"] = _stat(cam.timestamps_path)
            _output_files(cam.manual_output_dir, f"dlc/{cam.camera}/", files)
        return files
    _output_files(rec.manual_output_dir, "dlc/", files)
    return files


def _output_files(manual: Path, prefix: str, files: dict) -> None:
    """Size and mtime of each DLC output in ``manual`` as ``files[prefix + name]``."""
    if manual.is_dir():
        try:
            for entry in sorted(os.scandir(manual), key=lambda e: e.name):
                if entry.is_file() and not entry.name.startswith("."):
                    st = entry.stat()
                    files[f"{prefix}{entry.name}"] = (st.st_size, st.st_mtime_ns)
        except OSError:
            files[prefix] = None


def fingerprint(files: dict) -> str:
    """Short digest of :func:`recording_files`; part of each run key (keep it stable)."""
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]


def _size_mtime(path: str) -> tuple[int, int]:
    """``(size, mtime_ns)`` of a path; ``(-1, -1)`` when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return -1, -1
    return st.st_size, st.st_mtime_ns


def _stat_values(session_dir: str, names: list[str], mtimes: list[int] | None = None
                 ) -> list[int]:
    """The integers :func:`session_signature` digests: size and mtime of every path.

    The mtimes also go to ``mtimes`` when given. This runs for every known session on
    every tick, so the common case (every path there) is one ``try`` block.
    """
    stat = os.stat
    prefix = session_dir + "/"
    try:
        folder, yaml = stat(session_dir), stat(prefix + SESSION_FILE)
        values = [folder.st_size, folder.st_mtime_ns, yaml.st_size, yaml.st_mtime_ns]
        if mtimes is not None:
            mtimes += (folder.st_mtime_ns, yaml.st_mtime_ns)
        for name in names:
            st = stat(prefix + name)
            values += (st.st_size, st.st_mtime_ns)
            if mtimes is not None:
                mtimes.append(st.st_mtime_ns)
            if name.startswith(MANUAL_OUTPUT_PREFIX):
                values += _folder_values(prefix + name, mtimes)
        return values
    except OSError:
        pass
    # something is missing: the same sequence with -1 (never a size) for what is absent
    values = []
    for path in (session_dir, prefix + SESSION_FILE, *[prefix + name for name in names]):
        try:
            st = stat(path)
        except OSError:
            values.append(-1)
            continue
        values += (st.st_size, st.st_mtime_ns)
        if mtimes is not None:
            mtimes.append(st.st_mtime_ns)
        if path.startswith(prefix + MANUAL_OUTPUT_PREFIX):
            values += _folder_values(path, mtimes)
    return values


def _folder_values(folder: str, mtimes: list[int] | None) -> list[int]:
    """Size and mtime of every entry of a ``dlc_<stem>/`` folder, in name order.

    A file added to the folder changes only the folder's own mtime (covered by the
    caller), a file rewritten in it only its own size and mtime.
    """
    values = []
    try:
        with os.scandir(folder) as it:
            children = sorted(it, key=lambda e: e.name)
        for child in children:
            st = child.stat()
            values += (st.st_size, st.st_mtime_ns)
            if mtimes is not None:
                mtimes.append(st.st_mtime_ns)
    except OSError:
        values.append(-1)
    return values


def session_signature(session_dir: str, names: list[str]) -> tuple[int, int]:
    """Digest of what a session's recordings depend on, from ``stat`` calls only.

    Covers the folder's own mtime (it changes when an entry is added, removed or
    renamed), session.yaml, and the named entries: videos, timestamps files and
    ``dlc_<stem>/`` folders, whose files are listed and covered too (a file added to
    them changes only their own mtime). A file rewritten in place changes its own size or
    mtime, not the folder's, so every named file is ``stat``-ed on every call. Reading a
    folder listing costs ~20x a ``stat``, so only ``dlc_`` folders are listed.

    The digest is Python's ``hash`` of a tuple of integers (sizes and mtimes): it is the
    same in every process of one Python version (integer hashes are not randomised), and
    :data:`HASH_PROBE` in the scan state tells when another version hashes differently.

    Parameters
    ----------
    session_dir : str
        The session folder.
    names : list of str
        Entries of the folder the recordings depend on (that existed when it was read).

    Returns
    -------
    (int, int)
        The digest, and the newest mtime seen (ns since the epoch).
    """
    mtimes: list[int] = []
    values = _stat_values(session_dir, names, mtimes)
    return hash(tuple(values)), max(mtimes, default=0)


def _dependencies(rec: Recording) -> list[str]:
    """Names, in the session folder, of the entries a recording depends on (that exist)."""
    if rec.cameras:
        names = []
        for cam in rec.cameras:
            names.append(cam.video_path.name)
            if cam.timestamps_path is not None:
                names.append(cam.timestamps_path.name)
            if cam.manual_output_dir.is_dir():
                names.append(cam.manual_output_dir.name)
        return names
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
        not r.cameras  # a multi-camera take is stat-ed file by file on every tick
        and r.video_path.parent == session_dir
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

    A session folder whose recordings were all taken, and whose :func:`session_signature`
    is unchanged, costs its ``stat`` calls only (no listing, no session.yaml read, no
    per-recording work). ``state`` is only read: the result's state shares its unchanged
    parts, so that :class:`ScanStateStore` can tell an unchanged state cheaply.

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
    pending: dict[str, str] = state.get("pending", {})
    # The cache of unchanged sessions, keyed by the session path relative to the root:
    # its signature, the names it covers ("/"-joined: no name holds one; the videos come
    # first) and its recording ids ("/"-joined). Only sessions whose recordings were all
    # taken (in `seen`, none pending) are cached, so a matching signature needs nothing
    # else checked. Three flat dicts of strings and integers rather than a list per
    # session: decoding 100,000 lists costs more than the whole scan saves.
    # Those of an older layout or another hash algorithm are not comparable: such a state
    # costs one full read of every session (seen and pending are kept, nothing runs twice).
    current = state.get("v") == STATE_VERSION and state.get("h") == HASH_PROBE
    known: dict[str, int] = state.get("sessions", {}) if current else {}
    known_names: dict[str, str] = state.get("session_files", {}) if current else {}
    known_rids: dict[str, str] = state.get("session_recordings", {}) if current else {}
    result = ScanResult()
    problems: list[str] = []
    unchanged_keys: list[str] = []  # sessions whose signature matched, in discovery order
    # per session holding recordings, in discovery order: their ids ("/"-joined) and where
    # they are (the session folder for an unchanged session, else each video's path)
    order_rids: list[str] = []
    order_where: list[str | list[str]] = []
    fresh: list[Recording] = []  # recordings of the sessions read in full
    # their sessions' cache entries: (signature, names, recording ids), None when not cached
    fresh_entries: dict[str, tuple[int, str, str] | None] = {}
    session_imaging: dict[str, list[str]] = {}  # recording id -> its session's imaging files

    for subject, session, session_dir in session_dirs(data_root, problems):
        key = subject + "/" + session
        signature = known.get(key)
        if signature is not None:
            names = known_names[key]
            parts = names.split("/")
            if _SUBPATH in names:  # imaging files in subfolders
                parts = [n.replace(_SUBPATH, "/") for n in parts]
            if hash(tuple(_stat_values(session_dir, parts))) == signature:
                unchanged_keys.append(key)
                order_rids.append(known_rids[key])
                order_where.append(session_dir)
                continue
        result.sessions_read += 1
        before_read = (_size_mtime(session_dir), _size_mtime(session_dir + "/" + SESSION_FILE))
        n_problems = len(problems)
        recordings = session_recordings(subject, session_dir, problems)
        imaging = imaging_files(session_dir) if recordings else []
        for rec in recordings:
            session_imaging[rec.recording_id] = imaging
        if recordings:
            order_rids.append("/".join(r.recording_id for r in recordings))
            order_where.append([str(r.video_path) for r in recordings])
        cached = None
        if len(problems) == n_problems and _cacheable(Path(session_dir), recordings):
            names_list = ([r.video_path.name for r in recordings]
                          + [n for r in recordings for n in _dependencies(r)[1:]]
                          + [n.replace("/", _SUBPATH) for n in imaging])
            signature, newest_ns = session_signature(
                session_dir, [n.replace(_SUBPATH, "/") for n in names_list])
            # Not trusted: the folder changed while it was read, or a change so recent
            # that a file system with coarse mtimes (NFS, SMB) may not show the next one.
            unchanged = before_read == (_size_mtime(session_dir),
                                        _size_mtime(session_dir + "/" + SESSION_FILE))
            if unchanged and now_s - newest_ns / 1e9 >= _RECENT_S:
                cached = (signature, "/".join(names_list), order_rids[-1])
        fresh.extend(recordings)
        fresh_entries[key] = cached
    result.sessions_unchanged = len(unchanged_keys)

    # one join and one split (C loops) instead of a Python loop over every recording
    all_rids = "/".join(order_rids).split("/") if order_rids else []
    present = set(all_rids)
    collided: set[str] = set()
    if len(present) != len(all_rids):  # some id twice: report it as discovery does
        found = [(rid, where if isinstance(where, str) else where[i])
                 for rids, where in zip(order_rids, order_where, strict=True)
                 for i, rid in enumerate(rids.split("/"))]
        collided = refuse_collisions(found, problems)
        present -= collided
        # an unchanged session whose id now collides is read again until it is resolved
        unchanged_keys = [k for k in unchanged_keys
                          if collided.isdisjoint(known_rids[k].split("/"))]
    result.problems = problems
    new_pending: dict[str, str] = {}
    for rec in fresh:
        rid = rec.recording_id
        if rid in collided:
            continue
        files = recording_files(rec, session_imaging.get(rid, []))
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
        if rec.cameras and rec.has_video:  # every camera's video copied, not just one
            video = min((v for k, v in files.items() if k.startswith("video/")),
                        key=lambda v: v[0] if v else -1, default=None)
        files_there = (video is not None and video[0] > 0) if rec.has_video else (
            bool(outputs) and all(v is not None and v[0] > 0 for v in outputs))
        settled = (
            files_there and not partially_copied(rec.session_dir)
            and now_s - newest_ns / 1e9 >= settle_s
            and (settle_s <= 0 or pending.get(rid) == fp)
        )
        if not settled:
            new_pending[rid] = fp
            empty = (empty_videos([rec], settle_s, now_s).get(rid)
                     if rec.has_video and video is not None and video[0] == 0 else None)
            if empty:
                # 0 bytes past the settle time: not a copy in progress, a problem to fix
                # (status says the same); waiting for it would say "not settled" forever.
                result.problems.append(f"{rid}: {empty}")
                result.empty.append(rid)
            else:
                result.waiting.append(rid)
            continue
        if len(result.to_process) >= max_to_process:
            result.deferred.append(rid)
            new_pending[rid] = fp
            continue
        result.to_process.append((rec, fp))
        seen[rid] = fp
    # cached only when its recordings were all taken (see `known` above)
    taken = {key: cached for key, cached in fresh_entries.items()
             if cached is not None and all(rid in seen and rid not in new_pending
                                           and rid not in collided
                                           for rid in cached[2].split("/"))}
    if not taken and len(unchanged_keys) == len(known):
        # every cached session unchanged (keys are unique, so these are all of them):
        # the same dicts, which also lets the state store see an unchanged state at once
        sessions, session_names, session_rids = known, known_names, known_rids
    else:
        sessions = {k: known[k] for k in unchanged_keys}
        session_names = {k: known_names[k] for k in unchanged_keys}
        session_rids = {k: known_rids[k] for k in unchanged_keys}
        for key, (signature, names, rids) in taken.items():
            sessions[key], session_names[key], session_rids[key] = signature, names, rids
    result.removed = sorted(set(seen) - present)
    for rid in result.removed:
        seen.pop(rid, None)
    result.state = {"v": STATE_VERSION, "h": HASH_PROBE, "seen": seen, "pending": new_pending,
                    "sessions": sessions, "session_files": session_names,
                    "session_recordings": session_rids}
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
        return _json_loads(zlib.decompress(base64.b64decode(text)))
    except (ValueError, zlib.error):
        return {}


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a large state is decoded or encoded.

    Both create containers by the hundred thousand (decoding: the state's own; encoding:
    an ``(key, value)`` tuple per dict item); every 700 new containers start a collection,
    and in a process holding Dagster's objects those walks cost more than the work itself
    (encoding 100,000 recordings: ~0.6 s instead of ~0.2 s). Neither creates a reference
    cycle, so nothing is left for the collector to find.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _json_loads(raw: bytes) -> dict:
    """``json.loads`` with the garbage collector paused (:func:`_collector_paused`)."""
    with _collector_paused():
        return json.loads(raw)


def _json_dumps(state: dict) -> bytes:
    """Canonical compact JSON of a state, with the garbage collector paused."""
    with _collector_paused():
        return json.dumps(state, separators=(",", ":"), sort_keys=True).encode()


class ScanStateError(DLCPlatformError):
    """The sensor's scan state cannot be written."""


class ScanStateStore:
    """Scan states kept as files named by their digest; the digest is the sensor cursor.

    A state file is written before the cursor that names it is committed, and never
    changed afterwards: a tick that fails before its cursor is stored leaves the previous
    cursor pointing at the previous, intact state. The newest ``keep`` files are kept.

    The last state loaded or saved is also kept in memory (per folder, for the life of
    the process: the code server evaluating the sensor, which ``dagster-daemon`` replaces
    about every minute), beside its file's name. Decoding the state of 100,000 recordings
    costs ~0.2 s and encoding it ~0.3 s, so a tick that starts from the state the previous
    one saved does not read the file again (its presence is still checked), and a tick
    that changes nothing does not write it again. States given to and returned by the
    store must not be modified.

    Parameters
    ----------
    folder : Path
        Where the state files live (the sensor uses the Dagster instance's storage).
    keep : int
        How many state files to keep.
    """

    PREFIX = "state:"
    # folder -> (token, state) of the last state loaded or saved there
    _memory: dict[Path, tuple[str, dict]] = {}

    def __init__(self, folder: Path, keep: int = 5):
        self.folder = Path(folder)
        self.keep = keep

    def _path(self, token: str) -> Path:
        return self.folder / f"{token}.json.z"

    def state_path(self, cursor: str) -> Path | None:
        """The file a cursor names (None for an inline cursor of an older version)."""
        return self._path(cursor[len(self.PREFIX):]) if cursor.startswith(self.PREFIX) else None

    @classmethod
    def forget(cls) -> None:
        """Drop the states kept in memory, as a newly started process has none (benchmarks
        and tests use it to measure or exercise reading the file)."""
        cls._memory.clear()

    def load(self, cursor: str | None) -> tuple[dict, str | None]:
        """The state a cursor names, and a warning when it could not be found.

        Cursors written before states moved to files (inline encoded states) are read too.
        """
        if not cursor:
            return {}, None
        if not cursor.startswith(self.PREFIX):
            return decode_state(cursor), None
        token = cursor[len(self.PREFIX):]
        path = self._path(token)
        remembered = self._memory.get(self.folder)
        if remembered is not None and remembered[0] == token and path.is_file():
            return remembered[1], None
        try:
            state = _json_loads(zlib.decompress(path.read_bytes()))
        except (OSError, ValueError, zlib.error) as exc:
            return {}, (f"scan state {path} named by the sensor cursor cannot be read ({exc}); "
                        "starting from an empty state: every recording is looked at again, "
                        "and run keys keep already processed ones from running twice.")
        self._memory[self.folder] = (token, state)
        return state, None

    def save(self, state: dict) -> str:
        """Write ``state`` (unless an identical one exists) and return its cursor."""
        remembered = self._memory.get(self.folder)
        # the same state as the last one (scan shares unchanged parts, so this compares
        # mostly identical objects: milliseconds where encoding takes ~0.4 s)
        if remembered is not None and remembered[1] == state:
            try:
                os.utime(self._path(remembered[0]))  # newest again, so pruning keeps it
                return self.PREFIX + remembered[0]
            except OSError:
                pass  # the file is gone: written again below
        # level 1: a quarter of level 6's time for a file ~15% larger
        raw = zlib.compress(_json_dumps(state), 1)
        token = hashlib.blake2b(raw, digest_size=10).hexdigest()
        path = self._path(token)
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
        self._memory[self.folder] = (token, state)
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
