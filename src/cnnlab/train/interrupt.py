"""Stopping a run cleanly: Ctrl-C (SIGINT) and SIGTERM, what cluster schedulers and torchrun send
before they stop a job.

The first signal asks the trainer to stop at the end of the current optimiser step and save a
resumable ``last`` checkpoint; a second one stops at once, saving nothing (the previous ``last``
stays intact). A run stopped by SIGTERM ends with :class:`Preempted`, so that the command line
can exit with the status a shell gives a terminated job (143).
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Callable

# The signals a run stops gracefully on, and how a message names them.
SIGNAL_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


class Preempted(KeyboardInterrupt):
    """The run stopped on SIGTERM after saving its state (a scheduler's pre-emption, torchrun's stop)."""


@contextlib.contextmanager
def graceful_stop(on_first: Callable[[str], None]):
    """While inside, the first Ctrl-C or SIGTERM calls ``on_first(name)`` ("Ctrl-C" or "SIGTERM")
    and lets the code run on; a second one raises ``KeyboardInterrupt`` at once. The previous
    handlers are put back on leaving (and before the second signal's exception).

    Signal handlers belong to the main thread; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict = {}
    received: list[str] = []

    def restore():
        for number, handler in previous.items():
            signal.signal(number, handler)

    def handler(signum, frame):
        if received:
            restore()
            raise KeyboardInterrupt
        received.append(SIGNAL_NAMES[signum])
        on_first(received[0])

    for number in SIGNAL_NAMES:
        previous[number] = signal.signal(number, handler)
    try:
        yield
    finally:
        restore()
