"""A TLS terminator in front of the cloud broker that coalesces what it relays.

Mosquitto writes each MQTT packet with its own TLS write, so one TLS record
never holds the start of a second packet. TLS terminators that sit in front
of brokers (stunnel, haproxy, nginx stream, cloud load balancers) read
whatever the broker sent and write it on in large chunks: one record then
carries hundreds of small packets. A client that stops reading after a fixed
number of packets leaves the rest decrypted inside its SSL object, where the
socket's readiness never reports them. This relay reproduces that shape with
the real broker behind it: it buffers what the broker sends until the broker
has been quiet for `flush_idle_s`, then writes it to the client in one go.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from types import TracebackType

from tests.integration.cloud.cloud_broker import CloudBroker

CHUNK = 64 * 1024
FLUSH_AT = 1024 * 1024  # never hold more than this


class CoalescingTlsRelay:
    def __init__(self, cloud: CloudBroker, flush_idle_s: float = 0.05) -> None:
        self.cloud = cloud
        self.host = "127.0.0.1"
        self.port = 0
        self.flush_idle_s = flush_idle_s
        self.largest_write = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._connections: set[asyncio.Task[None]] = set()  # the server's, one per client

    async def __aenter__(self) -> CoalescingTlsRelay:
        facing_client = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        facing_client.load_cert_chain(self.cloud.pki.server_cert, self.cloud.pki.server_key)
        self._server = await asyncio.start_server(self._serve, self.host, 0, ssl=facing_client)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        if self._connections:
            await asyncio.wait(self._connections, timeout=5)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        facing_broker = ssl.create_default_context(cafile=self.cloud.pki.ca)
        facing_broker.load_cert_chain(self.cloud.pki.client_cert, self.cloud.pki.client_key)
        broker_in, broker_out = await asyncio.wait_for(
            asyncio.open_connection(self.cloud.host, self.cloud.port, ssl=facing_broker), 10
        )
        self._writers += [client_out, broker_out]
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._pass_on(client_in, broker_out))
                tasks.create_task(self._coalesce(broker_in, client_out))
        except* (ConnectionError, ssl.SSLError):
            pass  # one side went away: the other is closed below
        finally:
            client_out.close()
            broker_out.close()

    @staticmethod
    async def _pass_on(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while chunk := await source.read(CHUNK):
            sink.write(chunk)
            await asyncio.wait_for(sink.drain(), 10)
        sink.close()

    async def _coalesce(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        held = bytearray()
        while True:
            try:
                async with asyncio.timeout(self.flush_idle_s if held else None):
                    chunk = await source.read(CHUNK)
            except TimeoutError:
                await self._flush(held, sink)
                continue
            if not chunk:
                await self._flush(held, sink)
                sink.close()
                return
            held += chunk
            if len(held) >= FLUSH_AT:
                await self._flush(held, sink)

    async def _flush(self, held: bytearray, sink: asyncio.StreamWriter) -> None:
        if held:
            self.largest_write = max(self.largest_write, len(held))
            sink.write(bytes(held))
            held.clear()
            await asyncio.wait_for(sink.drain(), 10)
