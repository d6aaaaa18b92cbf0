"""Automatic torch threads: half the usable cores, fewer when busy, 1..8."""
from __future__ import annotations

import pytest
import torch

import fusion.threads as threads


@pytest.mark.parametrize("cores,load,expected", [(2, 0.0, 1), (2, 3.0, 1), (16, 0.0, 8), (16, 12.4, 4),
                                                  (8, 1.0, 4), (64, 0.0, 8), (1, 0.0, 1)])
def test_auto_threads(monkeypatch, cores, load, expected):
    monkeypatch.setattr(threads, "usable_cores", lambda: cores)
    monkeypatch.setattr(threads, "busy_cores", lambda: load)
    assert threads.auto_threads() == expected


def test_apply_threads_sets_torch_and_reports():
    before = torch.get_num_threads()
    try:
        assert threads.apply_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
