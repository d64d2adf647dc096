"""A round-robin TCP proxy in front of the action servers, as a Kubernetes Service would spread calls."""
import asyncio
import itertools
import threading
from typing import List, Optional, Sequence, Tuple

from ..processes import LOOPBACK, ServerError, pick_free_port


class RoundRobinProxy:
    """A TCP proxy on loopback that hands each new connection to the next live backend.

    Rasa opens one connection per action call, so this spreads calls over the action servers as a
    Kubernetes Service or an internal load balancer would; a backend that refuses is skipped.
    """

    def __init__(self, backends: Sequence[Tuple[str, int]], host: str = LOOPBACK) -> None:
        self.backends = list(backends)
        self.host, self.port = host, pick_free_port(host)
        self.counts = {b: 0 for b in self.backends}
        self._next = itertools.cycle(self.backends)
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/webhook"

    def start(self) -> "RoundRobinProxy":
        ready = threading.Event()
        failure: List[BaseException] = []

        def serve():
            self._loop = asyncio.new_event_loop()
            try:
                server = self._loop.run_until_complete(asyncio.start_server(self._handle, self.host, self.port))
            except BaseException as e:  # reported to start()
                failure.append(e)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            server.close()
            self._loop.run_until_complete(server.wait_closed())
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="action-proxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise ServerError(f"the action proxy could not listen on {self.host}:{self.port}: {failure[0]}")
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = None
        for _ in self.backends:
            backend = next(self._next)
            try:
                upstream = await asyncio.open_connection(*backend)
                self.counts[backend] += 1
                break
            except OSError:
                continue
        if upstream is None:
            writer.close()
            return
        up_reader, up_writer = upstream

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while True:
                    chunk = await source.read(65536)
                    if not chunk:
                        break
                    sink.write(chunk)
                    await sink.drain()
                if sink.can_write_eof():
                    sink.write_eof()
            except (ConnectionError, OSError):
                pass

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        for w in (writer, up_writer):
            w.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = self._thread = None
