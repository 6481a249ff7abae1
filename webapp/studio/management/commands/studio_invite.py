"""`python manage.py studio_invite [--days N] [--base-url URL]`: a one-use sign-up link for an
invite-only studio (STUDIO_SIGNUP=invite)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.urls import reverse

from webapp.studio.accounts import INVITE_DAYS, make_invite


class Command(BaseCommand):
    help = "Print a one-use sign-up link (for STUDIO_SIGNUP=invite)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=INVITE_DAYS,
                            help=f"days the link stays valid ({INVITE_DAYS})")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000",
                            help="the studio's address as users reach it")

    def handle(self, *args, days: int, base_url: str, **options) -> None:
        invite = make_invite(days=days)
        link = f"{base_url.rstrip('/')}{reverse('studio:signup')}?invite={invite.code}"
        self.stdout.write(link)
        if settings.STUDIO_SIGNUP != "invite":
            self.stderr.write(f"note: sign-up is {settings.STUDIO_SIGNUP!r} here; the link "
                              "matters only with STUDIO_SIGNUP=invite")
