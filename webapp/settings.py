"""One settings file, two modes.

Embedded (no environment variable set): SQLite, local media, the in-memory channel layer and
an in-process Celery worker thread on the in-memory transport; `make run` starts this.
Scaled (`REDIS_URL` set): channels-redis, separate `celery worker` processes on Redis, and
`DATABASE_URL` (sqlite or postgres) and `MEDIA_ROOT` honoured.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from webapp.env import env_bool, env_int, env_list, env_str, private_data_dir, secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = private_data_dir(Path(env_str("STUDIO_DATA_DIR", str(BASE_DIR / "var"))))

SECRET_KEY = secret_key(DATA_DIR / ".secret_key")
# Off unless asked for (DJANGO_DEBUG=1), `make run` included: a debug 404 lists every URL.
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

REDIS_URL = env_str("REDIS_URL")
SCALED = REDIS_URL is not None

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "webapp.studio",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "webapp.security_headers.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "webapp.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
ASGI_APPLICATION = "webapp.asgi.application"

DATABASES = {"default": dj_database_url.parse(
    env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'studio.sqlite3'}"), conn_max_age=0,
)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A worker thread and the server write at once: wait for the lock instead of failing.
    # WAL lets pages read while the worker writes.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE",
                                       "init_command": "PRAGMA journal_mode=WAL;"}
    # A file (other processes may need to see it), one per test run (runs may overlap).
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-studio-{os.getpid()}.sqlite3")}

if SCALED:
    CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # redis-py 8 reads with a 5 s socket timeout by default, exactly channels-redis's
        # 5 s BZPOPMIN: an idle socket's receive then raised TimeoutError and dropped it.
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}]},
    }}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
# Interactive jobs (previews) on their own queue, apart from long ones (searches and full
# trainings on the default queue "celery"): a preview never waits behind a search. Embedded
# mode runs one in-process consumer per queue; docker-compose one worker service per queue.
STUDIO_QUEUES = ("celery", "interactive")
CELERY_TASK_ROUTES = {"webapp.studio.previews.render_preview_task": {"queue": "interactive"}}
CELERY_TASK_ACKS_LATE = True  # a killed worker's task is redelivered, not lost
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# Embedded: run a worker thread inside the web process (nothing else to start).
STUDIO_INPROCESS_WORKER = env_bool("STUDIO_INPROCESS_WORKER", not SCALED)

MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(DATA_DIR / "media")))
STUDIO_CACHE_DIR = Path(env_str("PIXEL_CACHE_DIR", str(DATA_DIR / "frame-cache")))
# Optuna studies: the Django database when it is PostgreSQL, else a SQLite file beside it.
STUDIO_OPTUNA_STORAGE = env_str("STUDIO_OPTUNA_STORAGE") or (
    env_str("DATABASE_URL") if DATABASES["default"]["ENGINE"].endswith("postgresql")
    else f"sqlite:///{DATA_DIR / 'optuna.sqlite3'}"
)

# Upload limits (a clip is a sample for the search, not a feature film).
STUDIO_MAX_UPLOAD_BYTES = env_int("STUDIO_MAX_UPLOAD_BYTES", 200 * 1024 * 1024)
STUDIO_MAX_CLIP_SECONDS = env_int("STUDIO_MAX_CLIP_SECONDS", 120)
STUDIO_MAX_CLIP_PIXELS = env_int("STUDIO_MAX_CLIP_PIXELS", 3840 * 2160)
STUDIO_MIN_CLIP_SIDE = env_int("STUDIO_MIN_CLIP_SIDE", 64)
# Compute a search may ask for: optimizer steps over all rungs and baselines (the default
# search: 44,160), and workers sharing it.
STUDIO_MAX_SEARCH_STEPS = env_int("STUDIO_MAX_SEARCH_STEPS", 1_000_000)
STUDIO_MAX_WORKERS_PER_SEARCH = env_int("STUDIO_MAX_WORKERS_PER_SEARCH", 4)
# Per user (webapp.studio.limits): searches queued or running, full trainings queued or
# running, jobs waiting for a worker (searches, previews, full trainings), and the bytes of
# the user's files (clips, search folders); past the last, uploads and new jobs are refused.
STUDIO_MAX_ACTIVE_SEARCHES_PER_USER = env_int("STUDIO_MAX_ACTIVE_SEARCHES_PER_USER", 2)
STUDIO_MAX_FULL_TRAININGS_PER_USER = env_int("STUDIO_MAX_FULL_TRAININGS_PER_USER", 1)
STUDIO_MAX_QUEUED_JOBS_PER_USER = env_int("STUDIO_MAX_QUEUED_JOBS_PER_USER", 8)
STUDIO_MAX_STORAGE_BYTES_PER_USER = env_int("STUDIO_MAX_STORAGE_BYTES_PER_USER", 2 << 30)
# Every other request body (forms, JSON, sign-in), enforced before it is read (body_limits.py).
STUDIO_MAX_FORM_BYTES = env_int("STUDIO_MAX_FORM_BYTES", 64 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = True  # serve from static/ without collectstatic in embedded mode

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "studio:home"
LOGOUT_REDIRECT_URL = "login"
_VALIDATORS = "django.contrib.auth.password_validation."
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": _VALIDATORS + "UserAttributeSimilarityValidator"},
    {"NAME": _VALIDATORS + "MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": _VALIDATORS + "CommonPasswordValidator"},
    {"NAME": _VALIDATORS + "NumericPasswordValidator"},
]
# Who may create an account: open (anyone who reaches the server; `make run` is a one-person
# tool on loopback), invite (a one-use link an admin makes: `manage.py studio_invite`) or
# closed. The first account may always be created, and becomes the admin.
STUDIO_SIGNUP = env_str("STUDIO_SIGNUP", "invite" if SCALED else "open")
if STUDIO_SIGNUP not in ("open", "invite", "closed"):
    raise ImproperlyConfigured(f"STUDIO_SIGNUP={STUDIO_SIGNUP!r}: use open, invite or closed")
# Sign-in throttling (webapp.studio.accounts): failures allowed per account and per client
# address within the lockout window, after which even the right password waits.
STUDIO_LOGIN_FAILURES_PER_ACCOUNT = env_int("STUDIO_LOGIN_FAILURES_PER_ACCOUNT", 5)
STUDIO_LOGIN_FAILURES_PER_ADDRESS = env_int("STUDIO_LOGIN_FAILURES_PER_ADDRESS", 20)
STUDIO_LOGIN_LOCKOUT_SECONDS = env_int("STUDIO_LOGIN_LOCKOUT_SECONDS", 15 * 60)
# The throttle's counters: shared by every process in scaled mode, in memory when embedded.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                      "LOCATION": REDIS_URL} if SCALED else
          {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# A running search's workers beat every STUDIO_HEARTBEAT_S; every worker process's watchdog
# queues again a running search silent for STUDIO_STALE_AFTER_S (webapp.studio.watchdog).
STUDIO_HEARTBEAT_S = env_int("STUDIO_HEARTBEAT_S", 10)
STUDIO_STALE_AFTER_S = env_int("STUDIO_STALE_AFTER_S", 30)
STUDIO_WATCH_EVERY_S = env_int("STUDIO_WATCH_EVERY_S", 10)

# HTTPS behind a reverse proxy that terminates TLS and sets X-Forwarded-Proto (STUDIO_HTTPS=1):
# cookies only over HTTPS, plain HTTP redirected, browsers told to stay on HTTPS for a year.
# `manage.py check --deploy` is clean with it (tests/webapp/test_safe_defaults.py).
STUDIO_HTTPS = env_bool("STUDIO_HTTPS", False)
if STUDIO_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("STUDIO_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("STUDIO_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("STUDIO_HSTS_PRELOAD", True)  # a header only: listing is by hand
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("STUDIO_LOG_LEVEL", "INFO")},
}
