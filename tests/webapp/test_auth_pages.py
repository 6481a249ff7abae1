"""Sign-in is required everywhere; sign-up makes a first user easy; pages use local assets."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from tests.webapp.conftest import PASSWORD

LOGIN = reverse("login")

PAGES = [
    ("get", reverse("studio:home")),
    ("get", reverse("studio:clip_detail", args=[1])),
    ("get", reverse("studio:clip_file", args=[1])),
    ("get", reverse("studio:clip_thumbnail", args=[1])),
    ("get", reverse("studio:search_new")),
    ("get", reverse("studio:search_detail", args=[1])),
    ("post", reverse("studio:clip_upload")),
    ("post", reverse("studio:clip_sample")),
    ("post", reverse("studio:search_new")),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "url"), PAGES)
def test_pages_redirect_anonymous_users_to_login(client: Client, method: str, url: str) -> None:
    response = getattr(client, method)(url)
    assert response.status_code == 302
    assert response["Location"].startswith(f"{LOGIN}?next=")


@pytest.mark.django_db
def test_login_page_links_to_signup_and_has_csrf(client: Client) -> None:
    page = client.get(LOGIN).content.decode()
    assert reverse("studio:signup") in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert "/static/studio/studio.css" in page


@pytest.mark.django_db
def test_signup_creates_and_signs_in_a_user(client: Client) -> None:
    page = client.get(reverse("studio:signup"))
    assert page.status_code == 200 and 'name="password2"' in page.content.decode()
    response = client.post(reverse("studio:signup"), {
        "username": "newcomer", "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("studio:home")
    assert User.objects.filter(username="newcomer").exists()
    home = client.get(reverse("studio:home"))
    assert home.status_code == 200
    assert "newcomer" in home.content.decode()


@pytest.mark.django_db
def test_signup_refuses_mismatched_passwords(client: Client) -> None:
    response = client.post(reverse("studio:signup"), {
        "username": "newcomer", "password1": PASSWORD, "password2": PASSWORD + "x"})
    assert response.status_code == 400
    assert "didn" in response.content.decode()  # "The two password fields didn't match."
    assert not User.objects.filter(username="newcomer").exists()


def test_signup_page_sends_signed_in_users_home(client_in: Client) -> None:
    response = client_in.get(reverse("studio:signup"))
    assert response.status_code == 302 and response["Location"] == reverse("studio:home")


def test_login_and_logout(client: Client, user: User) -> None:
    response = client.post(LOGIN, {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("studio:home")
    home = client.get(reverse("studio:home")).content.decode()
    # Logout is a POST form with a CSRF token (GET logout is gone in Django 5).
    assert re.search(r'<form method="post" action="/accounts/logout/"', home)
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("studio:home")).status_code == 302


def test_home_for_a_newcomer_explains_what_to_do(client_in: Client) -> None:
    page = client_in.get(reverse("studio:home")).content.decode()
    assert "No clips yet" in page and "No searches yet" in page
    assert "Try the sample clip" in page
    assert reverse("studio:clip_sample") in page
    for label in ("Clips &amp; searches", "New search", "Log out", "alice"):
        assert label in page


def test_pages_use_only_local_assets(client_in: Client) -> None:
    for url in (reverse("studio:home"), reverse("studio:search_new"), LOGIN):
        page = client_in.get(url).content.decode()
        assert not re.search(r'(src|href)="(https?:)?//', page), url


def test_static_files_are_served(client: Client) -> None:
    for path in ("/static/studio/studio.css", "/static/studio/search_new.js"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert b"".join(response.streaming_content)


@pytest.mark.django_db
def test_admin_lists_the_studio_models(client: Client, make_clip, make_search) -> None:
    admin = User.objects.create_superuser("root", password=PASSWORD)
    make_search(make_clip(admin))
    client.force_login(admin)
    for model in ("clip", "search", "trial", "searchevent"):
        response = client.get(reverse(f"admin:studio_{model}_changelist"))
        assert response.status_code == 200, model
