"""The store root: STORE/<feature>/<fingerprint>/ directories and resolving reader references.

A reference is "name" (the only fingerprint of that feature, or `default_fp` when given and
present) or "name@fp" (fp may be a unique prefix).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feature_store.feature_dir import FeatureDir, check_name
from feature_store.reader import FeatureReader

DEFAULT_STORE = "eri_store"


class StoreError(Exception):
    """A store-level problem with a message meant for the user."""


class FeatureNotFound(StoreError, LookupError):
    pass


class AmbiguousFeature(StoreError, LookupError):
    pass


def default_store_path() -> Path:
    return Path(os.environ.get("ERI_STORE") or DEFAULT_STORE)


@dataclass(frozen=True)
class Candidate:
    feature: str
    fingerprint: str
    clips: int
    created: str

    def describe(self) -> str:
        return f"{self.feature}@{self.fingerprint} ({self.clips} clips, created {self.created or '?'})"


class FeatureStore:
    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.root)!r})"

    def feature_dir(self, feature: str, fingerprint: str, spec: dict[str, Any] | None = None) -> FeatureDir:
        """The directory for (feature, fingerprint), created with spec.json when a spec is given."""
        fd = FeatureDir(self.root / check_name("feature name", feature) / fingerprint, feature, fingerprint)
        return fd.ensure(spec)

    def features(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def fingerprints(self, feature: str) -> list[str]:
        base = self.root / feature
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if (p / "spec.json").is_file())

    def feature_dirs(self) -> list[FeatureDir]:
        return [FeatureDir(self.root / f / fp, f, fp) for f in self.features() for fp in self.fingerprints(f)]

    def candidates(self, feature: str) -> list[Candidate]:
        out = []
        for fp in self.fingerprints(feature):
            fd = FeatureDir(self.root / feature / fp, feature, fp)
            out.append(Candidate(feature, fp, len(fd.completed()), str(fd.meta.get("created", ""))))
        return out

    def resolve(self, ref: str, default_fp: str | None = None) -> FeatureDir:
        """FeatureDir named by `ref`; FeatureNotFound / AmbiguousFeature with the candidates otherwise."""
        feature, _, wanted = ref.partition("@")
        fps = self.fingerprints(feature)
        if not fps:
            known = ", ".join(self.features()) or "none"
            raise FeatureNotFound(f"feature {feature!r} is not in the store {self.root} (features: {known})")
        if wanted:
            matches = [fp for fp in fps if fp.startswith(wanted)]
        elif default_fp is not None and default_fp in fps:
            matches = [default_fp]
        else:
            matches = fps
        if not matches:
            listing = "; ".join(c.describe() for c in self.candidates(feature))
            raise FeatureNotFound(f"no fingerprint of {feature!r} matches {wanted!r} in {self.root}; "
                                  f"candidates: {listing}")
        if len(matches) > 1:
            listing = "; ".join(c.describe() for c in self.candidates(feature) if c.fingerprint in matches)
            raise AmbiguousFeature(f"{ref!r} is ambiguous in {self.root}: {listing}. "
                                   f"Name one as {feature}@<fingerprint>.")
        fp = matches[0]
        return FeatureDir(self.root / feature / fp, feature, fp)

    def reader(self, ref: str, default_fp: str | None = None) -> FeatureReader:
        return FeatureReader(self.resolve(ref, default_fp))
