"""Failure handling: one rank's failure ends the whole run, never a hang.

MPI collectives block until every rank arrives, so a rank that dies or
raises would leave the others waiting forever. Two guards prevent that:

- an uncaught exception on any rank prints its traceback and then calls
  ``MPI_Abort``, which makes the launcher end every rank (a rank killed by a
  signal is noticed by the launcher itself);
- a watchdog thread: code that waits for the other ranks (a compiled step
  with collectives, a broadcast) runs inside :func:`waiting`, and a wait
  longer than the timeout (``GRAPHC_DIST_TIMEOUT`` seconds, default 300)
  prints which rank waited for what and aborts the run.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

DEFAULT_TIMEOUT = 300.0

_state: dict[str, Any] = {"comm": None, "what": None, "since": 0.0, "timeout": DEFAULT_TIMEOUT}
_lock = threading.Lock()
_thread: threading.Thread | None = None


def timeout() -> float:
    """Seconds a rank may wait for the others before the run is aborted."""
    value = os.environ.get("GRAPHC_DIST_TIMEOUT")
    try:
        return float(value) if value else DEFAULT_TIMEOUT
    except ValueError:
        return DEFAULT_TIMEOUT


def install_failure_handling(comm: Any) -> None:
    """Abort every rank on an uncaught exception; start the watchdog (once)."""
    global _thread
    _state["comm"] = comm
    _state["timeout"] = timeout()
    previous = sys.excepthook

    def abort_on_exception(
        kind: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        previous(kind, exc, tb)
        if issubclass(kind, (KeyboardInterrupt, SystemExit)) and not _is_failure(exc):
            return
        _report(f"rank {comm.rank} raised {kind.__name__}; ending all {comm.size} ranks")
        _abort(comm, 1)

    sys.excepthook = abort_on_exception
    if _thread is None:
        _thread = threading.Thread(target=_watch, name="graphc-watchdog", daemon=True)
        _thread.start()


def _is_failure(exc: BaseException) -> bool:
    return isinstance(exc, SystemExit) and exc.code not in (None, 0)


@contextmanager
def waiting(what: str) -> Iterator[None]:
    """Mark a region where this rank waits for the others (see the module docstring)."""
    if _state["comm"] is None:
        yield
        return
    with _lock:
        _state["what"], _state["since"] = what, time.monotonic()
    try:
        yield
    finally:
        with _lock:
            _state["what"] = None


def _watch() -> None:
    while True:
        time.sleep(min(1.0, max(0.05, _state["timeout"] / 20)))
        with _lock:
            what, since = _state["what"], _state["since"]
        if what is None or time.monotonic() - since < _state["timeout"]:
            continue
        comm = _state["comm"]
        _report(
            f"rank {comm.rank} waited more than {_state['timeout']:g} s in {what} for the "
            "other ranks; one of them has probably died, hung or is running different code. "
            f"Ending all {comm.size} ranks (GRAPHC_DIST_TIMEOUT sets the limit)"
        )
        _abort(comm, 2)


# The launcher forwards each rank's stderr; an abort right after the write can end the
# job before the message is forwarded (seen as an exit code with empty output).
FORWARD_SECONDS = 0.5


def _abort(comm: Any, code: int) -> None:
    time.sleep(FORWARD_SECONDS)
    comm.abort(code)


def _report(message: str) -> None:
    try:
        sys.stderr.write(f"graphc.distributed: error: {message}\n")
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - best effort on the way out
        traceback.print_exc()
