"""Section "bodies": request bodies against page latency and server memory, side by side.

`make run`'s server (`python -m webapp.serve`) on a temporary data folder. A reader GETs the
sign-in page every 50 ms on its own connection: alone, then while an anonymous client sends a
300 MB multipart POST to the sign-in page at full speed, then while a signed-in user uploads a
clip just under the upload limit. Prints the reader's latency (median, p95, max) in each phase
and the server's resident memory (VmRSS) growth, and the answer each large request got.

    python -m bench --only bodies     # issue 10's targets: p95 <= 200 ms, <= 100 MB
    python -m bench.request_bodies    # the same figures, printed only

When daphne (the server before) is installed, the anonymous POST is repeated against it.
Quick mode: 20 MB bodies and a 20 MB upload limit.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench.common import SectionResult, Table, Target, fmt, latency_summary
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
    peaks = [before]
    sampling = threading.Event()

    def watch_memory() -> None:  # its own thread: a blocked GET must not hide the peak
        while not sampling.is_set():
            peaks.append(rss_mb(pid))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch_memory)
    watcher.start()
    if load is not None:
        load.start()
    deadline = time.time() + seconds
    while time.time() < deadline or (load is not None and load.is_alive()):
        samples.append(get_ms(port))
        time.sleep(0.05)
    if load is not None:
        load.join()
    sampling.set()
    watcher.join()
    peak = max(peaks)
    return {**latency_summary(samples), "rss_growth_mb": round(peak - before, 1)}


def daphne_phase(env: dict[str, str], root: Path, big: int) -> dict:
    """The same anonymous POST against daphne, the server before, when it is installed."""
    from studio_harness.processes import VENV_BIN

    daphne = VENV_BIN / "daphne"
    if not daphne.exists():
        return {}
    server, port = start_server(env, root, "daphne", command=lambda port: [
        str(daphne), "-b", "127.0.0.1", "-p", str(port), "webapp.asgi:application"])
    answered: dict[str, str] = {}
    try:
        get_ms(port)  # warm up
        results = {"idle": phase(port, server.popen.pid, None)}

        def anonymous() -> None:
            answered["status"] = send_body(port, "/accounts/login/", big, None)

        name = f"anonymous {big // MB} MB POST"
        results[name] = phase(port, server.popen.pid, threading.Thread(target=anonymous))
        results[name]["answer"] = answered.get("status", "")
    finally:
        server.stop()
    return results


def measure(big: int, upload_limit: int) -> dict:
    """Every phase's figures (uvicorn, then daphne when installed) and the answers."""
    root = Path(tempfile.mkdtemp(prefix="bench-bodies-"))
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(STUDIO_DATA_DIR=str(root / "data"), DJANGO_SECRET_KEY="bench-bodies",
               PYTHONUNBUFFERED="1", STUDIO_MAX_UPLOAD_BYTES=str(upload_limit))
    run_manage(env, "migrate", "--noinput", "-v", "0")
    created = run_driver(env, "create", json.dumps({
        "username": f"bench-{uuid.uuid4().hex[:6]}", "password": "correct horse 42",
        "clip": str(DATA / "video" / "city_tiny.mp4"), "config": {"rungs": None},
        "status": "cancelled"}))
    web, port = start_server(env, root)
    answers: dict[str, str] = {}
    names = {"anonymous": f"anonymous {big // MB} MB POST",
             "upload": f"signed-in upload of {upload_limit // MB - 1} MB"}
    try:
        get_ms(port)  # warm up
        results = {"idle": phase(port, web.popen.pid, None)}

        def anonymous() -> None:
            answers[names["anonymous"]] = send_body(port, "/accounts/login/", big, None)

        def upload() -> None:
            answers[names["upload"]] = send_body(
                port, "/clips/upload/", upload_limit - MB, f"sessionid={created['sessionid']}")

        results[names["anonymous"]] = phase(port, web.popen.pid,
                                            threading.Thread(target=anonymous))
        results[names["upload"]] = phase(port, web.popen.pid, threading.Thread(target=upload))
    finally:
        web.stop()
    return {"uvicorn": results, "daphne": daphne_phase(env, root, big), "answers": answers,
            "load": round(os.getloadavg()[0], 1), "names": names}


def run(ctx) -> SectionResult:  # noqa: ANN001  # bench.common.BenchContext
    started = time.perf_counter()
    big, limit = (20 * MB, 20 * MB) if ctx.quick else (300 * MB, UPLOAD_LIMIT)
    found = measure(big, limit)
    ctx.log(f"  bodies: {json.dumps(found['uvicorn'])}")
    rows = [["`python -m webapp.serve` (uvicorn)", name, f["gets"], fmt(f["median_ms"], 1),
             fmt(f["p95_ms"], 1), fmt(f["max_ms"], 1), fmt(f["rss_growth_mb"], 1),
             found["answers"].get(name, "")] for name, f in found["uvicorn"].items()]
    rows += [["daphne (before)", name, f["gets"], fmt(f["median_ms"], 1), fmt(f["p95_ms"], 1),
              fmt(f["max_ms"], 1), fmt(f["rss_growth_mb"], 1), f.get("answer", "")]
             for name, f in found["daphne"].items()]
    loaded = [f for name, f in found["uvicorn"].items() if name != "idle"]
    worst_p95 = max(f["p95_ms"] for f in loaded)
    worst_rss = max(f["rss_growth_mb"] for f in loaded)
    targets = [Target("page p95 during a large POST and an upload", "<= 200 ms",
                      f"{worst_p95:.1f} ms", worst_p95 <= 200),
               Target("server memory growth during them", "<= 100 MB", f"{worst_rss:.1f} MB",
                      worst_rss <= 100)]
    text = [
        "`make run`'s server on a temporary data folder. A reader GETs the sign-in page every "
        "50 ms, each on a new connection: alone, then while an anonymous client sends a "
        f"{big // MB} MB multipart POST to the sign-in page at full speed, then while a "
        f"signed-in user uploads {limit // MB - 1} MB to the upload route (the upload limit "
        f"here is {limit // MB} MB; the bench sends no CSRF token, so Django reads the whole "
        "body and answers 403: the body is streamed all the same). Memory: the server's "
        "VmRSS, sampled every 20 ms by its own thread, peak during the phase minus before "
        "it. When daphne is installed (it was the server before), the anonymous POST is "
        f"repeated against it. Load average "
        f"{found['load']} at the end.",
    ]
    return SectionResult(
        key="bodies", title="Request bodies: page latency and server memory", text=text,
        tables=[Table("Reader latency per phase", ["server", "phase", "GETs", "median ms",
                                                   "p95 ms", "max ms", "RSS growth MB",
                                                   "answer to the large request"], rows)],
        targets=targets, figures=found, seconds=time.perf_counter() - started)


def main() -> None:
    found = measure(300 * MB, UPLOAD_LIMIT)
    print(f"load average {found['load']}; server `python -m webapp.serve` (uvicorn)")
    for name, figures in found["uvicorn"].items():
        print(f"{name:34s} {json.dumps(figures)}")
    for name, figures in found["daphne"].items():
        print(f"daphne, {name:26s} {json.dumps(figures)}")
    for name, status in found["answers"].items():
        print(f"answer to {name}: {status}")


if __name__ == "__main__":
    sys.exit(main())
