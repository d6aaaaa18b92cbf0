"""Ctrl-C as a user gives it, for tests of interrupted runs.

- `interruptible(argv)`: a child started as a shell starts a command: its own process group,
  SIGINT at its default (a test runner started from a script may have inherited it ignored,
  and a child would then never see the signal).
- `ctrl_c_lost_in_gc()`: a SIGINT that lands inside a `__del__`, where Python reports the
  KeyboardInterrupt as "Exception ignored" and drops it (what the garbage collector does to
  a real Ctrl-C now and then).
- `terminal_sigint` (a fixture in tests/conftest.py): Python's own SIGINT handler, as in a
  process started from a terminal, restored afterwards.
"""
from __future__ import annotations

import signal
import subprocess


def interruptible(argv: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(argv, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kwargs)


class _InterruptedFinalizer:
    def __del__(self) -> None:
        signal.raise_signal(signal.SIGINT)


def ctrl_c_lost_in_gc() -> None:
    _InterruptedFinalizer()  # collected at once: the handler's KeyboardInterrupt is raised in __del__
