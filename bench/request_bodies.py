"""Request bodies against page latency and server memory, side by side in one run.

`make run`'s server (`python -m webapp.serve`) on a temporary data folder. A reader GETs the
sign-in page every 50 ms on its own connection: alone, then while an anonymous client sends a
300 MB multipart POST to the sign-in page at full speed, then while a signed-in user uploads a
clip just under the upload limit. Prints the reader's latency (median, p95, max) in each phase
and the server's resident memory (VmRSS) growth, and the answer each large request got.

    python -m bench.request_bodies            # issue 10's targets: p95 <= 200 ms, <= 100 MB
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from studio_harness.processes import run_driver, run_manage, start_server

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MB = 1024 * 1024
UPLOAD_LIMIT = 200 * MB  # the studio's default


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def get_ms(port: int) -> float:
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"GET /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                     "Connection: close\r\n\r\n".encode())
        while sock.recv(65536):
            pass
    return (time.perf_counter() - start) * 1000


def send_body(port: int, path: str, size: int, cookie: str | None) -> str:
    """A multipart POST of `size` bytes sent at full speed; the status line it got."""
    boundary = "benchboundary"
    prefix = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
              f"filename=\"big.mp4\"\r\nContent-Type: video/mp4\r\n\r\n").encode()
    suffix = f"\r\n--{boundary}--\r\n".encode()
    headers = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
               f"Content-Type: multipart/form-data; boundary={boundary}",
               f"Content-Length: {len(prefix) + size + len(suffix)}"]
    if cookie:
        headers.append(f"Cookie: {cookie}")
    block = b"\0" * MB
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        try:
            sock.sendall(("\r\n".join(headers) + "\r\n\r\n").encode() + prefix)
            for _ in range(size // MB):
                sock.sendall(block)
            sock.sendall(suffix)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused early: the server closed while we were still sending
        try:
            return sock.recv(200).split(b"\r\n")[0].decode() or "closed"
        except OSError:
            return "closed"


def phase(port: int, pid: int, load: threading.Thread | None, seconds: float = 4.0) -> dict:
    before = rss_mb(pid)
    samples: list[float] = []
    peak = before
    if load is not None:
        load.start()
    deadline = time.time() + seconds
    while time.time() < deadline or (load is not None and load.is_alive()):
        samples.append(get_ms(port))
        peak = max(peak, rss_mb(pid))
        time.sleep(0.05)
    if load is not None:
        load.join()
    samples.sort()
    return {"gets": len(samples), "median_ms": round(statistics.median(samples), 1),
            "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 1),
            "max_ms": round(samples[-1], 1), "rss_growth_mb": round(peak - before, 1)}


def daphne_phase(env: dict[str, str], root: Path) -> dict:
    """The same anonymous POST against daphne, the server before, when it is installed."""
    import shutil

    from studio_harness.processes import VENV_BIN, Process, free_port, wait_for

    daphne = VENV_BIN / "daphne"
    if not daphne.exists() and not shutil.which("daphne"):
        return {}
    port = free_port()
    server = Process("daphne", [str(daphne), "-b", "127.0.0.1", "-p", str(port),
                                "webapp.asgi:application"], env, root)

    def answers() -> bool:
        try:
            get_ms(port)
            return True
        except OSError:
            return False

    answered: dict[str, str] = {}
    try:
        wait_for(answers, 60, "daphne to answer")
        results = {"idle": phase(port, server.popen.pid, None)}

        def anonymous() -> None:
            answered["status"] = send_body(port, "/accounts/login/", 300 * MB, None)

        results["anonymous 300 MB POST"] = phase(port, server.popen.pid,
                                                 threading.Thread(target=anonymous))
        results["anonymous 300 MB POST"]["answer"] = answered.get("status", "")
    finally:
        server.stop()
    return results


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-bodies-"))
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(STUDIO_DATA_DIR=str(root / "data"), DJANGO_SECRET_KEY="bench-bodies",
               PYTHONUNBUFFERED="1")
    run_manage(env, "migrate", "--noinput", "-v", "0")
    created = run_driver(env, "create", json.dumps({
        "username": f"bench-{uuid.uuid4().hex[:6]}", "password": "correct horse 42",
        "clip": str(DATA / "video" / "city_tiny.mp4"), "config": {"rungs": None},
        "status": "cancelled"}))
    web, port = start_server(env, root)
    answers: dict[str, str] = {}
    try:
        get_ms(port)  # warm up
        results = {"idle": phase(port, web.popen.pid, None)}

        def anonymous() -> None:
            answers["anonymous 300 MB"] = send_body(port, "/accounts/login/", 300 * MB, None)

        def upload() -> None:
            answers["signed-in upload"] = send_body(
                port, "/clips/upload/", UPLOAD_LIMIT - MB, f"sessionid={created['sessionid']}")

        results["anonymous 300 MB POST"] = phase(port, web.popen.pid, threading.Thread(
            target=anonymous))
        results[f"signed-in upload of {UPLOAD_LIMIT // MB - 1} MB"] = phase(
            port, web.popen.pid, threading.Thread(target=upload))
    finally:
        web.stop()
    rival = daphne_phase(env, root)
    print(f"load average {os.getloadavg()[0]:.1f}; server `python -m webapp.serve` (uvicorn)")
    for name, figures in results.items():
        print(f"{name:34s} {json.dumps(figures)}")
    for name, figures in rival.items():
        print(f"daphne, {name:26s} {json.dumps(figures)}")
    for name, status in answers.items():
        print(f"answer to {name}: {status}")


if __name__ == "__main__":
    sys.exit(main())
