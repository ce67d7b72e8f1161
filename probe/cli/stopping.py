"""Stopping a long command cleanly: the first Ctrl-C or SIGTERM (how Slurm, Kubernetes and `kill`
stop a job) asks the loop to stop after its current step, keeping what is finished; a second aborts."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

STOP_SIGNALS = ("SIGINT", "SIGTERM")
EXIT_INTERRUPTED = 130  # the shell's status for a command stopped by Ctrl-C


def stop_on_signals(message: str) -> tuple[Callable[[], bool], Callable[[], None]]:
    """(should_stop, restore): after the first stop signal `should_stop()` is True and `message` is
    noted on stderr; a second raises KeyboardInterrupt. Off the main thread nothing is installed."""
    requested = {"stop": False}
    if threading.current_thread() is not threading.main_thread():
        return (lambda: False), (lambda: None)
    signums = [getattr(signal, name) for name in STOP_SIGNALS if hasattr(signal, name)]
    previous = {s: signal.getsignal(s) for s in signums}

    def handler(signum, frame):
        if requested["stop"]:
            raise KeyboardInterrupt
        requested["stop"] = True
        from probe.cli import console

        console.note(message)

    for s in signums:
        signal.signal(s, handler)

    def restore() -> None:
        for s, old in previous.items():
            signal.signal(s, old)

    return (lambda: requested["stop"]), restore
