"""Drives a real, running studio from outside, for the tests and the benchmarks alike.

The reliability tests (tests/reliability) and the live-path benchmark (bench/live_path.py)
both start the stack docker-compose runs and watch it as a browser would; this package is what
they share, so that bench/ never imports tests/:

    processes     the web server and Celery workers (docker-compose's commands), manage.py and the
                  driver as subprocesses, each killed with its starter; the Redis check
    driver        the Django side (users, clips, searches, launches, dumps), run as
                  `python -m studio_harness.driver` with the stack's environment
    http_session  cookies, CSRF and the real login form over http.client
    ws_listener   a raw RFC 6455 client that timestamps every message; the latency summary

pytest fixtures stay in tests/ (tests/reliability/conftest.py); nothing here imports pytest
or tests/.
"""
