"""Workers: the Huey consumer that moves runs along and runs syncs, plus the
sweeper that re-queues runs a dead worker left behind and queues the syncs
that are due. ``slipway worker`` runs one in the
foreground; commands that wait for a run (``deploy --wait``) run one inside
the command while they wait."""

from __future__ import annotations

import logging
import signal
import threading
from types import TracebackType
from typing import Any, Self

from slipway.bootstrap import Runtime
from slipway.errors import Conflict

__all__ = ["EmbeddedWorker", "run_worker"]

log = logging.getLogger(__name__)
SWEEP_S = 5.0


class SyncScheduler:
    """Runs the syncs that are due (by schedule, or asked for with ``sync
    run`` or the API), one at a time, in a thread of its own: a sync can take
    minutes and must not hold a run's worker. Several workers may run one
    each; a subscription's lease lets only one of them sync it."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="syncs")

    def start(self) -> None:
        self.thread.start()

    def _loop(self) -> None:
        from slipway.bootstrap import sync_service

        while not self.stop.wait(SWEEP_S):
            try:
                service = sync_service(self.rt.settings)
                for name in service.due():
                    if self.stop.is_set():
                        return
                    try:
                        record = service.run_queued(name, "worker")
                    except Conflict as exc:  # another worker got there first
                        log.info("sync of %s skipped: %s", name, exc.message)
                        continue
                    log.info("sync %d of %s: %s", record.id, name, record.outcome)
            except Exception:  # keep going through a database hiccup
                log.exception("running due syncs failed")


def _start_up(rt: Runtime) -> None:
    report = rt.runner.reconcile()
    for machine in report.deleted:
        log.warning("deleted machine %s: it belonged to no live run", machine)
    for problem in report.failed:
        log.warning("could not reconcile %s", problem)
    rt.runner.requeue_due(rt.queue.enqueue)


def _sweep(rt: Runtime, stop: threading.Event) -> None:
    while not stop.wait(SWEEP_S):
        try:
            rt.runner.requeue_due(rt.queue.enqueue)
        except Exception:  # keep sweeping through a database hiccup
            log.exception("sweeping for abandoned runs failed")


def _consumer(rt: Runtime, threads: int):  # type: ignore[no-untyped-def]
    # max_delay: an idle worker still looks at the queue twice a second.
    return rt.huey.create_consumer(
        workers=threads,
        worker_type="thread",
        max_delay=0.5,
        scheduler_interval=1,
        check_worker_health=True,
    )


def run_worker(rt: Runtime, threads: int) -> None:
    """Run in the foreground until SIGINT/SIGTERM."""
    _start_up(rt)
    stop = threading.Event()
    sweeper = threading.Thread(target=_sweep, args=(rt, stop), daemon=True, name="sweeper")
    sweeper.start()
    syncs = SyncScheduler(rt)
    syncs.start()
    try:
        _consumer(rt, threads).run()
    finally:
        stop.set()
        syncs.stop.set()


class EmbeddedWorker:
    """A worker inside another command, for as long as a ``with`` block
    lasts; ``syncs``: it runs due syncs too (``serve`` does, ``deploy
    --wait`` does not: a sync must not hold up a deploy)."""

    def __init__(self, rt: Runtime, threads: int = 4, *, syncs: bool = False) -> None:
        self.rt = rt
        self.threads = threads
        self._stop = threading.Event()
        self._consumer: Any = None
        self._syncs = SyncScheduler(rt) if syncs else None

    def __enter__(self) -> Self:
        _start_up(self.rt)
        self._consumer = _consumer(self.rt, self.threads)
        # The consumer installs its own SIGINT/SIGTERM handlers; inside a
        # command, Ctrl-C must still interrupt the command itself.
        saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        self._consumer.start()
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        threading.Thread(target=_sweep, args=(self.rt, self._stop), daemon=True).start()
        if self._syncs is not None:
            self._syncs.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._syncs is not None:
            self._syncs.stop.set()
        if self._consumer is not None:
            self._consumer.stop(graceful=True)
