"""Transient faults of the database and the broker: recognised, retried with backoff.

A PostgreSQL restart terminates every open connection ("terminating connection due to
administrator command"); a Redis restart drops the broker's. Neither should fail a search:
the work is still there once the service answers again, seconds later. Only errors of the
connection are retried here; a query that is wrong stays an error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connection

from engine.safe_files import first_line

log = logging.getLogger(__name__)
T = TypeVar("T")

# Backoff: 0.25, 0.5, 1, 2, 4, 5, 5, 5 ... seconds, about 40 s in all: longer than a restart.
FIRST_DELAY_S = 0.25
MAX_DELAY_S = 5.0
ATTEMPTS = 11


def is_transient(error: BaseException) -> bool:
    """A lost or refused connection of Django's database, Optuna's (SQLAlchemy) or Redis."""
    if isinstance(error, (OperationalError, InterfaceError)):
        return True
    try:
        import sqlalchemy.exc

        if isinstance(error, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
            return True
        if isinstance(error, sqlalchemy.exc.DBAPIError) and error.connection_invalidated:
            return True
    except ImportError:  # pragma: no cover - SQLAlchemy comes with Optuna
        pass
    try:
        import redis.exceptions

        if isinstance(error, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
            return True
    except ImportError:  # pragma: no cover - redis comes with channels-redis and Celery
        pass
    return False


def backoff_delays(attempts: int = ATTEMPTS) -> list[float]:
    return [min(MAX_DELAY_S, FIRST_DELAY_S * 2 ** i) for i in range(attempts - 1)]


def reset_connection() -> None:
    """Drop Django's connection of this thread: after a server restart it is dead, and the
    next query opens a new one."""
    try:
        connection.close()
    except Exception:  # closing a dead connection may itself fail
        pass


def retrying(action: Callable[[], T], what: str, attempts: int = ATTEMPTS,
             sleep: Callable[[float], None] = time.sleep) -> T:
    """`action()`, retried with backoff while it fails transiently (one log line each), at
    most `attempts` times. Inside a transaction a retry cannot help (the transaction is
    lost): the error goes up to the code that opened it."""
    delays = backoff_delays(attempts)
    for attempt in range(attempts):
        try:
            return action()
        except Exception as error:
            if (not is_transient(error) or attempt == attempts - 1
                    or connection.in_atomic_block):
                raise
            delay = delays[attempt]
            log.warning("%s: %s: %s; retrying in %.2f s (attempt %d of %d)", what,
                        type(error).__name__, first_line(error), delay, attempt + 2, attempts)
            reset_connection()
            sleep(delay)
    raise AssertionError("unreachable")
