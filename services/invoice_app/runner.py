"""Pay runs off the request threads. A run goes on a thread of its own, one run at a time per
process; a pay request waits for it, and requests that come meanwhile join the same run. At
most THREADS - 1 requests wait at once, so one waitress thread is always free for /healthz
and /readyz: a long run can never starve the probes into restarting the pod mid-run."""

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from invoice_app.domain import PayReport


class Busy(Exception):
    """Every request thread that may wait for a pay run already does."""


class PayRunner:
    def __init__(self, run: Callable[[], PayReport], *, request_threads: int) -> None:
        self._run = run
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pay-run")
        self._lock = threading.Lock()
        self._current: Future[PayReport] | None = None
        self._waiters = threading.BoundedSemaphore(max(1, request_threads - 1))

    def pay(self) -> PayReport:
        """Starts a run, or joins the one in flight, and returns its report."""
        if not self._waiters.acquire(blocking=False):
            raise Busy
        try:
            with self._lock:
                if self._current is None or self._current.done():
                    self._current = self._executor.submit(self._run)
                future = self._current
            return future.result()
        finally:
            self._waiters.release()
