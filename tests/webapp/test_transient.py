"""The retry rule for transient faults: connection errors of the database (Django's and
Optuna's SQLAlchemy) and of Redis are retried with backoff; anything else is raised at once."""

from __future__ import annotations

import pytest
import redis.exceptions
import sqlalchemy.exc
from django.db import IntegrityError, OperationalError, transaction

from webapp.studio.transient import backoff_delays, is_transient, retrying


def test_connection_errors_are_transient_and_wrong_queries_are_not() -> None:
    assert is_transient(OperationalError("server closed the connection unexpectedly"))
    assert is_transient(sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("gone")))
    assert is_transient(redis.exceptions.ConnectionError("Connection refused"))
    assert not is_transient(IntegrityError("duplicate key"))
    assert not is_transient(ValueError("bad"))


def test_backoff_doubles_up_to_its_cap_and_outlasts_a_restart() -> None:
    delays = backoff_delays()
    assert delays[:4] == [0.25, 0.5, 1.0, 2.0] and max(delays) == 5.0
    assert sum(delays) > 30


def test_a_transient_error_is_retried_until_it_passes() -> None:
    slept: list[float] = []
    failures = [OperationalError("gone"), OperationalError("gone")]

    def action() -> str:
        if failures:
            raise failures.pop()
        return "done"

    assert retrying(action, "test", sleep=slept.append) == "done"
    assert slept == [0.25, 0.5]


def test_other_errors_and_the_last_attempt_are_raised() -> None:
    slept: list[float] = []
    with pytest.raises(ValueError):
        retrying(lambda: (_ for _ in ()).throw(ValueError("bad")), "test", sleep=slept.append)
    assert slept == []
    with pytest.raises(OperationalError):
        retrying(lambda: (_ for _ in ()).throw(OperationalError("down")), "test", attempts=3,
                 sleep=slept.append)
    assert slept == [0.25, 0.5]


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_the_error_goes_to_its_owner() -> None:
    """A retry inside an atomic block cannot help (the transaction is lost)."""
    slept: list[float] = []
    with pytest.raises(OperationalError), transaction.atomic():
        retrying(lambda: (_ for _ in ()).throw(OperationalError("gone")), "test",
                 sleep=slept.append)
    assert slept == []
