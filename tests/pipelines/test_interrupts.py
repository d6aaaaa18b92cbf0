"""A Ctrl-C is never lost: one that Python drops (raised inside a finalizer during garbage
collection) is raised again at the next safe point; an inherited "ignore SIGINT" is kept."""
from __future__ import annotations

import signal

import pytest
from signal_helpers import ctrl_c_lost_in_gc

from pipelines.interrupts import catch_interrupts, raise_if_interrupted


def test_python_alone_drops_a_ctrl_c_raised_in_a_finalizer(terminal_sigint):
    ctrl_c_lost_in_gc()              # no exception reaches us: the reason catch_interrupts exists
    assert terminal_sigint == [KeyboardInterrupt]
    raise_if_interrupted()           # nothing pending outside the block


def test_a_dropped_ctrl_c_is_raised_at_the_next_safe_point(terminal_sigint):
    with catch_interrupts():
        ctrl_c_lost_in_gc()
        assert terminal_sigint == [KeyboardInterrupt]
        with pytest.raises(KeyboardInterrupt):
            raise_if_interrupted()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    raise_if_interrupted()           # forgotten once the block is left


def test_a_ctrl_c_that_lands_normally_is_raised_where_it_lands(terminal_sigint):
    with catch_interrupts(), pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


def test_an_inherited_ignore_is_kept(terminal_sigint):
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # started by nohup or as a script's background job
    with catch_interrupts():
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        signal.raise_signal(signal.SIGINT)
        raise_if_interrupted()
