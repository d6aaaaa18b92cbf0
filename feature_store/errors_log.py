"""errors.jsonl: one JSON line per failed clip, appended atomically.

Each line is {"clip_id", "reason", "time" (UTC ISO 8601), ...extra info}. Lines are written with
a single os.write on an O_APPEND descriptor, so concurrent writers never interleave; to stay
under the size where that holds, long reasons are truncated and oversized info is dropped.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

from feature_store.fsutil import MAX_ATOMIC_LINE, append_line

log = logging.getLogger(__name__)
MAX_REASON = 2000


def _utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def format_error(clip_id: str, reason: str, info: dict[str, Any]) -> bytes:
    reason = str(reason)
    if len(reason) > MAX_REASON:
        reason = reason[:MAX_REASON] + "…[truncated]"
    record = {"clip_id": clip_id, "reason": reason, "time": _utc_now(),
              **{k: v for k, v in info.items() if k not in ("clip_id", "reason", "time")}}
    line = json.dumps(record, ensure_ascii=False, default=str).encode("utf-8")
    if len(line) >= MAX_ATOMIC_LINE:
        record = {"clip_id": clip_id, "reason": reason, "time": record["time"], "info_truncated": True}
        line = json.dumps(record, ensure_ascii=False).encode("utf-8")
    while len(line) >= MAX_ATOMIC_LINE:  # multi-byte characters: shrink until it fits
        record["reason"] = record["reason"][: len(record["reason"]) // 2] + "…[truncated]"
        line = json.dumps(record, ensure_ascii=False).encode("utf-8")
    return line + b"\n"


def append_error(path: Path, clip_id: str, reason: str, info: dict[str, Any]) -> None:
    append_line(path, format_error(clip_id, reason, info))


def read_errors(path: Path) -> list[dict[str, Any]]:
    """All records in file order; unparsable lines (a torn write on a crashed disk) are skipped."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    records = []
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            log.warning("%s line %d is not JSON; skipped", path, n)
            continue
        if isinstance(record, dict) and isinstance(record.get("clip_id"), str):
            records.append(record)
    return records


def latest_errors(path: Path) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for record in read_errors(path):
        latest[record["clip_id"]] = record
    return latest
