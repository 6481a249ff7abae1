"""A real WebSocket client for a live studio that timestamps every message on arrival, and
the worker -> client latency computed from those timestamps."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any


class WsListener:
    """A minimal real WebSocket client (RFC 6455 over a TCP socket, asyncio) in its own
    thread; every message is kept with its arrival time (`time.time()`, the clock the engine
    stamps events with). Autobahn is not installed here."""

    def __init__(self, port: int, path: str, cookie: str | None) -> None:
        self.url = f"ws://127.0.0.1:{port}{path}"
        self.origin = f"http://127.0.0.1:{port}"
        self.port, self.cookie = port, cookie
        self.messages: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.opened = threading.Event()
        self.closed = threading.Event()
        self.close_code: int | None = None
        self.path = path
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._closing = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ws-listener", daemon=True)

    def __enter__(self) -> WsListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._session())
        except BaseException as error:  # reported by the waiting side
            self._error = error
        finally:
            self.closed.set()
            loop.close()

    async def _session(self) -> None:
        """RFC 6455 client: the upgrade handshake, then text frames until a close frame."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._writer = writer
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {self.path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}",
                 "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13", f"Origin: {self.origin}"]
        if self.cookie:
            lines.append(f"Cookie: {self.cookie}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status = int(head.split(" ", 2)[1])
        if status != 101:
            self.close_code = status  # refused during the handshake (the server answers 403)
            writer.close()
            return
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        fields = dict(line.split(":", 1) for line in head.split("\r\n")[1:] if ":" in line)
        headers = {name.strip().lower(): value.strip() for name, value in fields.items()}
        if headers.get("sec-websocket-accept") != accept:
            raise ConnectionError(f"bad handshake answer: {head!r}")
        self.opened.set()
        fragments = b""
        while True:
            first, second = await reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                length = int.from_bytes(await reader.readexactly(2), "big")
            elif length == 127:
                length = int.from_bytes(await reader.readexactly(8), "big")
            payload = await reader.readexactly(length)  # server frames are never masked
            opcode = first & 0x0F
            if opcode == 0x8:  # close
                self.close_code = int.from_bytes(payload[:2], "big") if payload else 1005
                if not self._closing:
                    self._send_frame(0x8, payload[:2])
                writer.close()
                return
            if opcode == 0x9:  # ping
                self._send_frame(0xA, payload)
                continue
            if opcode in (0x0, 0x1):
                fragments += payload
                if first & 0x80:  # FIN
                    self.messages.put((time.time(), json.loads(fragments.decode())))
                    fragments = b""

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        """A masked frame (clients must mask), payloads under 126 bytes only."""
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._writer.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def wait_open(self, timeout: float = 15) -> bool:
        """True once the server accepted the socket; False if it refused or closed it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.opened.is_set():
                return True
            if self.closed.is_set():
                if self._error is not None:
                    raise AssertionError(f"WebSocket failed: {self._error!r}")
                return False
            time.sleep(0.02)
        raise AssertionError(f"WebSocket {self.url} neither opened nor closed in {timeout} s")

    def next(self, timeout: float = 30) -> tuple[float, dict[str, Any]]:
        item = self.messages.get(timeout=timeout)
        self.received.append(item)
        return item

    def drain(self) -> list[tuple[float, dict[str, Any]]]:
        while True:
            try:
                self.next(timeout=0)
            except queue.Empty:
                return self.received

    def wait_event(self, predicate: Callable[[dict[str, Any]], bool], timeout: float,
                   alive: Callable[[], None] | None = None) -> dict[str, Any]:
        """Read messages until an event matches (all messages stay in `received`)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                _, message = self.next(timeout=0.5)
            except queue.Empty:
                if alive is not None:
                    alive()
                if self.closed.is_set() and self.messages.empty():
                    raise AssertionError(f"the server closed the socket ({self.close_code}, "
                                         f"{self._error!r}) while waiting for an event") from None
                if time.monotonic() > deadline:
                    kinds = [m.get("event", {}).get("kind") for _, m in self.received]
                    raise AssertionError(
                        f"no matching event within {timeout} s; got {kinds}") from None
                continue
            if message.get("type") == "event" and predicate(message["event"]):
                return message["event"]

    def events(self) -> list[dict[str, Any]]:
        return [m["event"] for _, m in self.received if m.get("type") == "event"]

    def close(self) -> None:
        """Send a close frame (1000) and wait for the server's; the thread always ends."""
        loop = self._loop
        if loop is not None and self.opened.is_set() and not self.closed.is_set():
            self._closing = True
            try:
                loop.call_soon_threadsafe(self._send_frame, 0x8, (1000).to_bytes(2, "big"))
            except RuntimeError:  # the loop already finished
                pass
            self.closed.wait(5)
        if loop is not None and not self.closed.is_set():
            def cancel_all() -> None:
                for task in asyncio.all_tasks(loop):
                    task.cancel()

            try:
                loop.call_soon_threadsafe(cancel_all)
            except RuntimeError:
                pass
        self._thread.join(5)


def latency_summary(listener: WsListener, kind: str | None = "trial_finished") -> dict:
    """Seconds from an event's creation in the worker (its `at`, time.time() there) to its
    arrival at this client, for one kind of event (None: every event that has `at`)."""
    delays = sorted(arrived - m["event"]["at"] for arrived, m in listener.received
                    if m.get("type") == "event" and "at" in m["event"]
                    and kind in (None, m["event"]["kind"]))
    if not delays:
        return {"n": 0}

    def pct(p: float) -> float:
        return delays[min(len(delays) - 1, round(p * (len(delays) - 1)))]

    return {"n": len(delays), "p50_ms": 1000 * pct(0.5), "p95_ms": 1000 * pct(0.95),
            "max_ms": 1000 * delays[-1]}


def print_latency(label: str, listener: WsListener) -> dict:
    """Print (pytest -s) the trial_finished latency, and that of every timed event."""
    summary = latency_summary(listener)
    every = latency_summary(listener, None)
    for name, values in (("trial_finished", summary), ("all timed events", every)):
        print(f"[latency] {label}, {name}: worker -> WebSocket client: "
              + ", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in values.items()))
    return summary
