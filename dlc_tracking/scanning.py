"""Finding recordings that are new or changed and *settled* (fully copied) on disk.

Pure logic behind the session sensor: given the data root, the state kept from the last
scan and the time, decide which recordings to process. State is a small JSON-able dict,
so a sensor can keep it in its cursor.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from dlc_tracking.sessions import Recording, discover_recordings, partially_copied


@dataclass
class ScanResult:
    # (recording, fingerprint) pairs to run now
    to_process: list[tuple[Recording, str]] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # not settled yet
    deferred: list[str] = field(default_factory=list)  # over the per-scan bound
    removed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    state: dict = field(default_factory=dict)


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
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]


def scan(data_root: Path, state: dict | None, now_s: float, settle_s: float,
         max_to_process: int) -> ScanResult:
    """Recordings to process now: new or changed since the last scan, and settled.

    Settled: no partial-copy marker in the session folder, the video is not empty, every
    file is at least ``settle_s`` old, and (when ``settle_s`` > 0) sizes and mtimes are the
    same as the previous scan saw. At most ``max_to_process`` are returned; the rest are
    left for the next scan (they stay "unseen" in the state).
    """
    state = state or {}
    seen: dict[str, str] = dict(state.get("seen", {}))
    pending: dict[str, str] = dict(state.get("pending", {}))
    result = ScanResult()
    found = discover_recordings(data_root)
    result.problems = list(found.problems)
    present = set()
    new_pending: dict[str, str] = {}
    for rec in found.recordings:
        rid = rec.recording_id
        present.add(rid)
        files = recording_files(rec)
        fp = fingerprint(files)
        if seen.get(rid) == fp:
            continue
        newest_ns = max((v[1] for v in files.values() if v), default=0)
        video = files.get("video")
        settled = (
            video is not None and video[0] > 0 and not partially_copied(rec.session_dir)
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
    result.state = {"seen": seen, "pending": new_pending}
    return result


def encode_state(state: dict) -> str:
    """Compact cursor text (zlib + base64 JSON): ~25 bytes per recording."""
    raw = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
    return base64.b64encode(zlib.compress(raw, 6)).decode()


def decode_state(text: str | None) -> dict:
    if not text:
        return {}
    try:
        return json.loads(zlib.decompress(base64.b64decode(text)))
    except (ValueError, zlib.error):
        return {}
