"""The Django studio project: settings, urls, asgi (Channels) and the Celery app."""

from webapp.celery import app as celery_app

__all__ = ("celery_app",)
