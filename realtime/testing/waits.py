"""Waiting in tests: for a condition, never for a fixed time."""

import time

DEFAULT_TIMEOUT = 10.0  # generous: a busy CI machine is slow, and only a failing wait ever waits this long


def wait_until(predicate, timeout=DEFAULT_TIMEOUT, interval=0.02, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")
