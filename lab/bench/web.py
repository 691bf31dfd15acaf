"""`shelfwatch bench web`: page-load times of every page, per role, on a 50-store × 500-SKU world,
against the login page (no data) measured in the same run."""

from __future__ import annotations

import re
import secrets
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np

from core.settings import Settings


def build_world_db(settings: Settings, world_dir: Path, stores: int, skus: int, days: int, log) -> dict:
    """Simulate, load, forecast and detect once (kept between runs: the database is reused)."""
    from alerts.detect import detect_alerts
    from core.db import get_engine
    from forecasting.runs import engine_settings, run_forecast
    from lab.simulator import simulate_world, world_now
    from lab.world_db import load_world_bulk
    from sql.migrate import migrate

    engine = migrate(settings.db_url)
    t0 = time.perf_counter()
    simulate_world(world_dir, stores=stores, skus=skus, days=days, members=100 * stores, seed=3)
    log(f"simulated {stores} x {skus} x {days} days in {time.perf_counter() - t0:.0f} s")
    t0 = time.perf_counter()
    loaded = load_world_bulk(engine, world_dir)
    log(f"loaded {loaded} in {time.perf_counter() - t0:.0f} s")
    t0 = time.perf_counter()
    run_forecast(get_engine(settings.db_url), engine_settings(settings))
    log(f"forecast in {time.perf_counter() - t0:.0f} s")
    return detect_alerts(engine, replace(settings, as_of=world_now(world_dir)))


def time_pages(settings: Settings, requests: int = 20) -> list[dict]:
    """Median and p95 milliseconds per page and role, served by uvicorn over loopback HTTP."""
    import httpx
    from sqlalchemy import select

    from core.db import get_engine
    from shelfwatch.web.app import create_app
    from shelfwatch.web.auth import add_user
    from sql import schema

    engine = get_engine(settings.db_url)
    password = secrets.token_urlsafe(12)
    with engine.connect() as conn:
        store = conn.execute(
            select(schema.alerts.c.store_id)
            .where(schema.alerts.c.status == "open")
            .order_by(schema.alerts.c.severity.desc())
            .limit(1)
        ).scalar()
        alert = conn.execute(
            select(schema.alerts.c.alert_id)
            .where(schema.alerts.c.store_id == store)
            .order_by(schema.alerts.c.severity.desc())
            .limit(1)
        ).scalar()
        linked = conn.execute(select(schema.alert_members.c.alert_id).limit(1)).scalar() or alert
        sku = conn.execute(select(schema.alerts.c.sku).where(schema.alerts.c.alert_id == alert)).scalar()
    users = {"planner": ("bench-planner", None), "store_manager": ("bench-manager", store), "cx": ("bench-cx", None)}
    for role, (name, s) in users.items():
        add_user(engine, name, password, role, s)
    pages = [
        ("login page (baseline, no data)", None, "/login"),
        ("forecast explorer + heat map", "planner", f"/forecast?store={store}&sku={sku}"),
        ("alert inbox", "store_manager", f"/stores/{store}/alerts"),
        ("alert history", "store_manager", f"/alerts/{alert}/history"),
        ("CX alert list", "cx", "/cx"),
        ("CX members of an alert", "cx", f"/cx?alert={linked}"),
        ("pipeline health", "planner", "/health"),
    ]
    clients = {}
    # plain loopback HTTP: the Secure flag would keep the client from sending the session cookie back;
    # it changes nothing in what a page costs to serve
    with serving(create_app(replace(settings, web_secure_cookies=False)), host="127.0.0.1") as base:
        for role, (name, _) in users.items():
            client = httpx.Client(base_url=base)
            token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
            client.post("/login", data={"username": name, "password": password, "csrf": token})
            clients[role] = client
        clients[None] = httpx.Client(base_url=base)
        out = []
        for name, role, path in pages:
            client = clients[role]
            assert client.get(path).status_code == 200, f"{path} as {role}"  # warm-up, and a check
            ms = []
            for _ in range(requests):
                t0 = time.perf_counter()
                response = client.get(path)
                ms.append(1000 * (time.perf_counter() - t0))
                assert response.status_code == 200
            out.append(
                {
                    "page": name,
                    "role": role or "-",
                    "path": path,
                    "median_ms": float(np.median(ms)),
                    "p95_ms": float(np.percentile(ms, 95)),
                    "bytes": len(response.content),
                }
            )
        for c in clients.values():
            c.close()
    return out


@contextmanager
def serving(app, host: str = "localhost", timeout: float = 20.0):
    """Run `app` under uvicorn in a background thread on a free port; yields its base URL."""
    import socket

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the web app did not start on port {port} within {timeout} s")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
