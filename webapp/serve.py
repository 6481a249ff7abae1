"""`python -m webapp.serve [--host H] [--port P]`: the studio's ASGI server, the one command
`make run`, docker-compose and the tests start.

Uvicorn, not daphne: daphne (Twisted) parses a multipart body in memory on its event-loop
thread before the application sees it, so one large POST stalled every other request and no
limit could act in time. Uvicorn hands the body over in chunks as it arrives, with flow
control, so webapp.body_limits refuses an oversized body before reading it and an accepted
upload streams to disk (Django spools bodies over FILE_UPLOAD_MAX_MEMORY_SIZE) off the loop.
"""

from __future__ import annotations

import argparse

import uvicorn


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m webapp.serve", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    uvicorn.run("webapp.asgi:application", host=args.host, port=args.port,
                http="httptools", ws="websockets", lifespan="off",  # Django has no lifespan
                proxy_headers=False,  # REMOTE_ADDR is the peer (the sign-in throttle keys on it)
                timeout_keep_alive=5, log_level="info")


if __name__ == "__main__":
    main()
