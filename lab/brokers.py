"""An in-process MQTT broker (amqtt) for the demo and for machines without Mosquitto.

It runs its own asyncio loop in a background thread on 127.0.0.1 and a free port. amqtt speaks
MQTT 3.1.1, so its URL asks clients for that protocol (`?protocol=3.1.1`), and it names a user
because amqtt keeps an offline session's messages only for authenticated clients.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedBroker:
    """`with EmbeddedBroker() as broker: ... broker.url ...`"""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="embedded-mqtt-broker", daemon=True)
        self._broker = None

    @property
    def url(self) -> str:
        return f"mqtt://shelfwatch@127.0.0.1:{self.port}?protocol=3.1.1"

    async def _start(self) -> None:
        from amqtt.broker import Broker

        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            # amqtt queues messages for offline persistent sessions only when the client is not
            # anonymous: any client that names a user is let in, and the URL names one.
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False}},
            "session_expiry_interval": 7 * 24 * 3600,  # keep offline sessions and their queued messages
        }
        self._broker = Broker(config, loop=self._loop)
        await self._broker.start()

    def __enter__(self) -> EmbeddedBroker:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=15)
        return self

    def __exit__(self, *exc) -> None:
        if self._broker is not None:
            asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(timeout=15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
