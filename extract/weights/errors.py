"""Exceptions raised by the weights registry, resolver, fetcher and importer."""
from __future__ import annotations


class WeightsError(Exception):
    """Base class: anything that stops us from handing out a weights file."""


class WeightsMissing(WeightsError, FileNotFoundError):
    """No usable file for an entry in any of the places we look."""


class WeightsCorrupt(WeightsError):
    """A file is there but its sha256 (or layout) is not what was recorded or pinned."""


class WeightsFetchError(WeightsError):
    """A download or wheel extraction failed (network, pip, missing wheel member)."""


class UnsafeCheckpoint(WeightsError):
    """A checkpoint could not be read without running code it asks to run, or holds no tensors."""
