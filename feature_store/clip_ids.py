"""The one rule for clip ids, used wherever an id enters the project.

Canonical id (`canonical_id`): surrounding whitespace is removed, then square brackets that
enclose the whole id are removed with the whitespace inside them, as long as something is left
(`[[7]]` -> `7`, `[]` stays `[]`), so applying the rule twice changes nothing. Nothing else
changes: case, zero padding and every other character are kept. So Hume's `[00001]`,
` [00001] ` and `00001` are the same clip `00001`; `00001` and `1` are different ids.

Applied to: video file stems and manifest ids (pipelines/dataset.py), clip ids written to or
looked up in the store (ShardWriter, FeatureDir, FeatureReader; ids stored by older versions as
`[00001]` are found as `00001`), CSV import (the id column, else the file name), labels,
partition files and ids files (fusion/). Where ids go back out to the user (predictions CSVs),
they are written as the labels file spelled them.

Integer ids without zero padding (`match_ids`): when labels say `1` and the store holds `00001`,
an all-digit id that is not in the store as written is matched to the stored all-digit id of the
same integer value, if exactly one stored id has that value and no other wanted id claims it.
Anything else (two stored ids `1` and `001`, or labels holding both `2` and `00002`) is reported
as ambiguous, never guessed.

Id columns (`id_column`) are found by name, ignoring case, spaces, '-' and '_': `File_ID`
(also `FileID`, `file_id`), then `id`/`Id`, then `clip_id`, in that order of preference.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Collection, Iterable

ID_COLUMNS: tuple[str, ...] = ("fileid", "id", "clipid")


def canonical_id(raw: str) -> str:
    """The canonical spelling of a clip id (rule in the module docstring)."""
    cid = raw.strip()
    while len(cid) > 2 and cid[0] == "[" and cid[-1] == "]":
        inner = cid[1:-1].strip()
        if not inner:
            break
        cid = inner
    return cid


def column_key(name: str) -> str:
    """A column name compared ignoring case, spaces, hyphens and underscores."""
    return re.sub(r"[\s\-_]+", "", name.strip().lower())


def id_column(header: Iterable[str]) -> int | None:
    """Index of the id column in a CSV header, or None."""
    keys = [column_key(h) for h in header]
    return next((keys.index(c) for c in ID_COLUMNS if c in keys), None)


def _is_int(cid: str) -> bool:
    return cid.isascii() and cid.isdigit()


@dataclass
class IdMatch:
    """How wanted ids (labels) map onto available ids (the store)."""
    mapping: dict[str, str] = field(default_factory=dict)        # wanted -> available, every match
    by_value: dict[str, str] = field(default_factory=dict)       # the matches made by integer value
    unmatched: list[str] = field(default_factory=list)
    ambiguous: dict[str, str] = field(default_factory=dict)      # wanted -> why it cannot be matched

    def describe_ambiguous(self, limit: int = 10) -> str:
        items = [f"{w!r} {why}" for w, why in list(self.ambiguous.items())[:limit]]
        more = f"; ... and {len(self.ambiguous) - limit} more" if len(self.ambiguous) > limit else ""
        return "; ".join(items) + more


def match_ids(wanted: Iterable[str], available: Collection[str]) -> IdMatch:
    """Match canonical `wanted` ids to `available` ids: exact, else by integer value (module docstring)."""
    wanted = list(dict.fromkeys(wanted))
    result = IdMatch()
    by_int: dict[int, list[str]] | None = None
    claims: dict[str, list[str]] = {}
    for w in wanted:
        if w in available:
            result.mapping[w] = w
            continue
        if not _is_int(w):
            result.unmatched.append(w)
            continue
        if by_int is None:
            by_int = {}
            for a in available:
                if _is_int(a):
                    by_int.setdefault(int(a), []).append(a)
        candidates = sorted(by_int.get(int(w), []))
        if not candidates:
            result.unmatched.append(w)
        elif len(candidates) > 1:
            result.ambiguous[w] = f"could be any of the stored clips {', '.join(map(repr, candidates))}"
        else:
            claims.setdefault(candidates[0], []).append(w)
    for target, claimants in claims.items():
        rivals = claimants + ([target] if target in result.mapping else [])
        if len(rivals) > 1:
            for w in claimants:
                others = ", ".join(repr(r) for r in rivals if r != w)
                result.ambiguous[w] = f"has the integer value of stored clip {target!r}, which is also named as {others}"
        else:
            result.mapping[claimants[0]] = result.by_value[claimants[0]] = target
    return result
