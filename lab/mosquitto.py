"""A private Mosquitto process on its own port and config, for benchmarks and fault tests that must
restart a broker or use ACLs without touching the shared one."""

from __future__ import annotations

import getpass
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from lab.brokers import free_port

BASE_CONFIG = """\
user {user}
listener {port} 127.0.0.1
persistence true
persistence_location {data}/
autosave_interval 60
max_queued_messages 0
max_inflight_messages 1000
log_dest file {data}/mosquitto.log
"""


class MosquittoProcess:
    """`with MosquittoProcess() as broker: broker.url; broker.restart(); broker.kill()`"""

    def __init__(self, extra_config: str = "", anonymous: bool = True, workdir: Path | None = None) -> None:
        if shutil.which("mosquitto") is None:
            raise FileNotFoundError("mosquitto is not installed (Debian package 'mosquitto')")
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="shelfwatch-mosquitto-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.config = self.dir / "mosquitto.conf"
        self.config.write_text(
            BASE_CONFIG.format(port=self.port, data=self.dir, user=getpass.getuser())
            + f"allow_anonymous {'true' if anonymous else 'false'}\n"
            + extra_config
        )
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"mosquitto exited: {self.proc.stderr.read().decode(errors='replace')}"
                    ) from None
                time.sleep(0.05)
        raise TimeoutError(f"mosquitto did not listen on {self.port}")

    def log(self) -> str:
        path = self.dir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Graceful stop: Mosquitto writes its persistence file on SIGTERM."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> MosquittoProcess:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def synthetic_reading(sensor: int, seq: int, store_id: str, sku: str) -> dict:
    """A valid reading for load and fault tests: sensor `X{sensor}`, one per second of device time."""
    ts = f"2026-11-{1 + (seq // 86400) % 28:02d}T{(seq // 3600) % 24:02d}:{(seq // 60) % 60:02d}:{seq % 60:02d}+00:00"
    return {
        "sensor_id": f"X{sensor}",
        "store_id": store_id,
        "sku": sku,
        "kind": "shelf_units",
        "value": float(seq % 40),
        "ts": ts,
        "seq": seq,
        "battery": 0.8,
    }


def publish_backlog(
    url_port: int,
    prefix: str,
    messages: int,
    *,
    per_message: int = 1,
    sensors: int = 100,
    store_id: str = "S1",
    sku: str = "A",
    parallel: int = 4,
) -> int:
    """Publish `messages` QoS 1 messages (of `per_message` readings each) with mosquitto_pub, fast.

    One mosquitto_pub per sensor topic reads its messages as lines from stdin; a few run at once.
    Returns the number of readings published.
    """
    import json

    if shutil.which("mosquitto_pub") is None:
        raise FileNotFoundError("mosquitto_pub is not installed (Debian package 'mosquitto-clients')")
    per_sensor = [messages // sensors + (1 if s < messages % sensors else 0) for s in range(sensors)]
    running: list[subprocess.Popen] = []
    for s, count in enumerate(per_sensor):
        lines = []
        for m in range(count):
            items = [synthetic_reading(s, m * per_message + i, store_id, sku) for i in range(per_message)]
            lines.append(json.dumps(items[0] if per_message == 1 else items, separators=(",", ":")))
        topic = f"{prefix}/stores/{store_id}/sensors/X{s}/readings"
        proc = subprocess.Popen(
            ["mosquitto_pub", "-p", str(url_port), "-q", "1", "-l", "-t", topic], stdin=subprocess.PIPE
        )
        proc.stdin.write(("\n".join(lines) + "\n").encode())
        proc.stdin.close()
        running.append(proc)
        while len(running) >= parallel:
            running.pop(0).wait()
    for proc in running:
        if proc.wait() != 0:
            raise RuntimeError("mosquitto_pub failed")
    return messages * per_message
