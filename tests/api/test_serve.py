"""`shipledger serve`: one process on loopback; prints the first admin key once; answers; a
SIGTERM shuts it down cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_with_the_printed_key_and_stops_on_sigterm(store_url: str) -> None:
    port = free_port()
    exe = str(Path(sys.executable).with_name("shipledger"))
    env = {**os.environ, "SHIPLEDGER_DATABASE_URL": store_url}
    server = subprocess.Popen(
        [exe, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    key = None
    lines = []
    try:
        assert server.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            lines.append(line)
            if "admin API key" in line:
                key = line.rsplit(" ", 1)[-1].strip()
            if "Uvicorn running" in line or "Application startup complete" in line:
                break
        assert key, "".join(lines)
        base = f"http://127.0.0.1:{port}"
        health = httpx.get(f"{base}/healthz", timeout=10)
        anonymous = httpx.get(f"{base}/api/v1/loads", timeout=10)
        authorised = httpx.get(
            f"{base}/api/v1/loads", timeout=10, headers={"Authorization": f"Bearer {key}"}
        )
    finally:
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=60)

    assert health.json() == {"status": "ok"}
    assert anonymous.status_code == 401 and authorised.status_code == 200
    assert server.returncode == 0, out
    assert "Shutting down" in out or "Finished server process" in out
    assert key not in out  # printed once, at start, never again


def test_a_second_serve_on_the_same_database_prints_no_new_key(store_url: str) -> None:
    exe = str(Path(sys.executable).with_name("shipledger"))
    env = {**os.environ, "SHIPLEDGER_DATABASE_URL": store_url}
    subprocess.run(
        [exe, "keys", "create", "--role", "admin"], env=env, check=True, capture_output=True
    )
    port = free_port()
    server = subprocess.Popen(
        [exe, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(0.5)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
    finally:
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=60)
    assert "admin API key" not in out
