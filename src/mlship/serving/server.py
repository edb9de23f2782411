"""uvicorn, run so that SIGTERM drains instead of dropping connections, and exits 0.

On SIGTERM (or SIGINT) a ``DrainingServer``:

1. flips the process's ``Drain``: ``/ready`` answers 503 and every reply says
   ``Connection: close`` (``mlship.serving.shutdown``);
2. stops accepting: the listening sockets close (within uvicorn's 0.1 s tick);
3. lets requests in flight finish, and answers requests that arrive on connections already
   open (they get ``Connection: close``) instead of closing those under the client's feet;
   a connection that stays idle is closed after uvicorn's keep-alive timeout (5 s), which
   is when it would have been closed anyway;
4. after the grace period (``timeout_graceful_shutdown``, from ``--grace-seconds``) cancels
   whatever is left, then exits with status 0 (uvicorn re-raises the signal: status -15).

With ``--workers N`` uvicorn's supervisor forwards SIGTERM to each worker, which drains the
same way; the supervisor closes its copy of the listening socket first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Generator, Iterator
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import multiprocess

from mlship.serving.shutdown import PROCESS_DRAIN, Drain

log = logging.getLogger("uvicorn.error")
SIGNALS = (signal.SIGINT, signal.SIGTERM)
POLL_SECONDS = 0.05
CANCEL_WAIT_SECONDS = 1.0


def busy(connection: object) -> bool:
    """Whether a connection is inside a request (headers read, reply not complete)."""
    cycle = getattr(connection, "cycle", None)
    return cycle is not None and not getattr(cycle, "response_complete", True)


class DrainingServer(uvicorn.Server):
    """``uvicorn.Server`` with a draining shutdown and a clean exit on SIGTERM."""

    def __init__(self, config: uvicorn.Config, drain: Drain = PROCESS_DRAIN) -> None:
        super().__init__(config)
        self.drain = drain

    @property
    def grace(self) -> float:
        return float(self.config.timeout_graceful_shutdown or 0)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.drain.begin()  # first: a request already on the event loop's queue sees it
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Like uvicorn's, minus re-raising the signal afterwards: a drained stop exits 0."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.drain.begin()
        since = self.drain.since or time.monotonic()
        deadline = since + self.grace
        log.info("Shutting down: draining for at most %.0f s", self.grace)
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        connections = self.server_state.connections
        for connection in list(connections):
            if busy(connection):
                connection.shutdown()  # the reply in progress closes its connection
        idle_until = min(time.monotonic() + self.config.timeout_keep_alive, deadline)
        await self._wait(idle_until, lambda: not connections)
        for connection in list(connections):
            connection.shutdown()  # idle ones close now; busy ones after their reply
        await self._wait(deadline, lambda: not connections and not self.server_state.tasks)
        await self._cancel_leftovers()
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _wait(self, until: float, done: Callable[[], bool]) -> None:
        while not done() and not self.force_exit and time.monotonic() < until:
            await asyncio.sleep(POLL_SECONDS)

    async def _cancel_leftovers(self) -> None:
        tasks = self.server_state.tasks
        if not tasks:
            return
        log.error("Grace period of %.0f s over: cancelling %d request(s)", self.grace, len(tasks))
        for task in list(tasks):
            task.cancel(msg="grace period over")
        await self._wait(time.monotonic() + CANCEL_WAIT_SECONDS, lambda: not tasks)


class DrainingProcess(multiprocess.Process):
    """A uvicorn worker process whose server is a ``DrainingServer``."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = DrainingServer(config=self.config)
        return self._server


class DrainingSupervisor(multiprocess.Multiprocess):
    """uvicorn's supervisor, closing its listening socket before it signals the workers."""

    def terminate_all(self) -> None:
        for sock in self.sockets:
            sock.close()
        super().terminate_all()


@contextlib.contextmanager
def draining_workers() -> Iterator[None]:
    """uvicorn's supervisor builds ``multiprocess.Process`` by name: ours, while it runs."""
    original = multiprocess.Process
    multiprocess.Process = DrainingProcess  # type: ignore[misc]
    try:
        yield
    finally:
        multiprocess.Process = original  # type: ignore[misc]


def run(config: uvicorn.Config) -> int:
    """Serve until a signal has drained the server(s); the process exit status."""
    if config.workers <= 1:
        server = DrainingServer(config)
        server.run()
        return 0 if server.started else STARTUP_FAILURE
    supervisor = DrainingSupervisor(config, sockets=[config.bind_socket()])
    with draining_workers():
        supervisor.run()
    failed = any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)
    return STARTUP_FAILURE if failed else 0
