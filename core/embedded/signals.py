"""Stopping a server process by pid: a polite signal, then SIGKILL if it hangs."""

import os
import signal
from contextlib import suppress

import psutil


def wait_gone(pid: int, timeout_s: float) -> bool:
    """True once `pid` has exited (or never existed); False if it still runs after the wait."""
    try:
        psutil.Process(pid).wait(timeout=timeout_s)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return False
    return True


def stop_process(pid: int, first: signal.Signals, grace_s: float, kill_wait_s: float) -> None:
    """Send `first` and wait up to `grace_s`; then SIGKILL and wait up to `kill_wait_s`."""
    with suppress(ProcessLookupError):
        os.kill(pid, first)
    if not wait_gone(pid, grace_s):
        kill_process(pid, kill_wait_s)


def kill_process(pid: int, wait_s: float) -> None:
    """SIGKILL, as a crash looks (chaos, or a server that would not stop)."""
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    wait_gone(pid, wait_s)
