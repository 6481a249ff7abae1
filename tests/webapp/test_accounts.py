"""Accounts (issue 10, part 5): Django's password validators, sign-in throttled per account
and per address, sign-up open / invite-only / closed, the first user the admin."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from tests.webapp.conftest import PASSWORD
from webapp.studio.models import Invite

pytestmark = pytest.mark.django_db
LOGIN = reverse("login")
SIGNUP = reverse("studio:signup")


def sign_up(client: Client, username: str, password: str = PASSWORD, **extra: str):
    return client.post(SIGNUP, {"username": username, "password1": password,
                                "password2": password, **extra})


@pytest.mark.parametrize("weak", ["password", "12345678", "1234567890", "short1"])
def test_weak_passwords_are_refused_with_the_reason(client: Client, weak: str) -> None:
    response = sign_up(client, "newcomer", weak)
    assert response.status_code == 400
    body = response.content.decode()
    assert any(reason in body for reason in ("too common", "entirely numeric", "too short"))
    assert not User.objects.filter(username="newcomer").exists()


def test_the_first_account_becomes_the_admin_and_the_next_does_not(client: Client) -> None:
    assert sign_up(client, "founder").status_code == 302
    founder = User.objects.get(username="founder")
    assert founder.is_superuser and founder.is_staff
    assert sign_up(Client(), "second").status_code == 302
    assert not User.objects.get(username="second").is_superuser


def test_failed_sign_ins_lock_the_account_even_for_the_right_password(
        client: Client, user: User, settings: Settings) -> None:
    for _ in range(settings.STUDIO_LOGIN_FAILURES_PER_ACCOUNT):
        assert client.post(LOGIN, {"username": "alice", "password": "wrong guess"}
                           ).status_code == 200
    locked = client.post(LOGIN, {"username": "ALICE", "password": PASSWORD})
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    other = User.objects.create_user("bob", password=PASSWORD)  # another account still works
    assert client.post(LOGIN, {"username": other.username, "password": PASSWORD}
                       ).status_code == 302


def test_failed_sign_ins_from_one_address_lock_it(client: Client, user: User,
                                                  settings: Settings) -> None:
    settings.STUDIO_LOGIN_FAILURES_PER_ADDRESS = 3
    for name in ("x1", "x2", "x3"):  # a different account each time
        client.post(LOGIN, {"username": name, "password": "wrong guess"})
    assert client.post(LOGIN, {"username": "alice", "password": PASSWORD}).status_code == 429
    elsewhere = Client(REMOTE_ADDR="10.1.2.3")
    assert elsewhere.post(LOGIN, {"username": "alice", "password": PASSWORD}
                          ).status_code == 302


def test_a_closed_studio_refuses_sign_up_after_the_first(client: Client, user: User,
                                                         settings: Settings) -> None:
    settings.STUDIO_SIGNUP = "closed"
    for response in (client.get(SIGNUP), sign_up(client, "newcomer")):
        assert response.status_code == 403
        assert "closed" in response.content.decode()
    assert not User.objects.filter(username="newcomer").exists()


def test_an_invite_only_studio_takes_each_invitation_once(client: Client, user: User,
                                                          settings: Settings) -> None:
    settings.STUDIO_SIGNUP = "invite"
    assert client.get(SIGNUP).status_code == 403  # no invitation
    out = StringIO()
    call_command("studio_invite", "--base-url", "http://studio.example", stdout=out)
    link = out.getvalue().strip()
    code = link.split("invite=")[1]
    assert link.startswith("http://studio.example/signup/?invite=")
    page = client.get(f"{SIGNUP}?invite={code}")
    assert page.status_code == 200 and f'value="{code}"' in page.content.decode()
    assert sign_up(client, "invited", invite=code).status_code == 302
    assert Invite.objects.get(code=code).used_by.username == "invited"
    again = sign_up(Client(), "freeloader", invite=code)
    assert again.status_code == 403 and "not valid" in again.content.decode()
    assert sign_up(Client(), "guesser", invite="made-up").status_code == 403
    assert not User.objects.filter(username__in=["freeloader", "guesser"]).exists()
