"""Accounts: who may sign up (open, invite-only or closed; the first user becomes the admin)
and sign-in throttling per account and per address, counted in Django's cache.

A refused sign-in says why and for how long; while an account or an address is locked, even
the right password is refused, so guessing gains nothing from a lucky try.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from webapp.studio.models import Invite

SIGNUP_MODES = ("open", "invite", "closed")
INVITE_DAYS = 7


# --- sign-in throttling ----------------------------------------------------------------------

def _keys(request: HttpRequest, username: str) -> list[tuple[str, int]]:
    """(cache key, failures allowed) of the account and of the client's address."""
    account = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    address = request.META.get("REMOTE_ADDR", "unknown")
    return [(f"login-fail:account:{account}", settings.STUDIO_LOGIN_FAILURES_PER_ACCOUNT),
            (f"login-fail:address:{address}", settings.STUDIO_LOGIN_FAILURES_PER_ADDRESS)]


def locked(request: HttpRequest, username: str) -> bool:
    return any(int(cache.get(key, 0)) >= limit for key, limit in _keys(request, username))


def record_failure(request: HttpRequest, username: str) -> None:
    for key, _ in _keys(request, username):
        cache.add(key, 0, settings.STUDIO_LOGIN_LOCKOUT_SECONDS)  # the window starts here
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, settings.STUDIO_LOGIN_LOCKOUT_SECONDS)


def clear_account(request: HttpRequest, username: str) -> None:
    cache.delete(_keys(request, username)[0][0])


class ThrottledLoginView(LoginView):
    """Django's LoginView, refusing (429) while the account or the address is locked."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        username = request.POST.get("username", "")
        if locked(request, username):
            form = AuthenticationForm(request, data=None)
            minutes = max(1, settings.STUDIO_LOGIN_LOCKOUT_SECONDS // 60)
            context = self.get_context_data(form=form, locked_minutes=minutes)
            return self.render_to_response(context, status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        record_failure(self.request, self.request.POST.get("username", ""))
        return super().form_invalid(form)

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        clear_account(self.request, form.get_user().get_username())
        return super().form_valid(form)


# --- sign-up ---------------------------------------------------------------------------------

def make_invite(created_by=None, days: int = INVITE_DAYS) -> Invite:
    return Invite.objects.create(code=secrets.token_urlsafe(24), created_by=created_by,
                                 expires_at=timezone.now() + timedelta(days=days))


def _usable_invites(code: str) -> QuerySet[Invite]:
    """The invitation `code` names while it is unused and unexpired (none for no code)."""
    return Invite.objects.filter(code=code or None, used_by__isnull=True,
                                 expires_at__gt=timezone.now())


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("studio:home")
    first_user = not get_user_model().objects.exists()  # it becomes the admin
    mode = settings.STUDIO_SIGNUP
    code = (request.POST.get("invite") or request.GET.get("invite") or "").strip()
    if not first_user and mode == "closed":
        return render(request, "registration/signup_refused.html", {
            "reason": "Sign-up is closed on this studio: ask its administrator for an "
                      "account."}, status=403)
    if not first_user and mode == "invite" and not _usable_invites(code).exists():
        reason = ("This invitation is not valid: it was used, it expired or it was mistyped. "
                  "Ask the administrator for a new link." if code else
                  "This studio is invite-only: open the sign-up link from your invitation, "
                  "or ask its administrator for one.")
        return render(request, "registration/signup_refused.html", {"reason": reason},
                      status=403)
    form = UserCreationForm(request.POST or None)
    context = {"form": form, "invite": code if mode == "invite" else "",
               "first_user": first_user}
    if request.method == "POST":
        if form.is_valid():
            with transaction.atomic():
                user = form.save(commit=False)
                if not get_user_model().objects.exists():
                    user.is_staff = user.is_superuser = True
                user.save()
                if mode == "invite" and not user.is_superuser:
                    claimed = _usable_invites(code).update(used_by=user,
                                                           used_at=timezone.now())
                    if not claimed:  # someone used it a moment ago
                        transaction.set_rollback(True)
                        return render(request, "registration/signup_refused.html", {
                            "reason": "This invitation was used a moment ago: ask the "
                                      "administrator for a new link."}, status=403)
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            welcome = f"Welcome, {user.get_username()}! Start with a clip."
            if user.is_superuser:
                welcome += " You are this studio's administrator (the first account)."
            messages.success(request, welcome)
            return redirect("studio:home")
        return render(request, "registration/signup.html", context, status=400)
    return render(request, "registration/signup.html", context)
