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

from webapp.env import env_bool, env_int, env_list, env_str, secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("STUDIO_DATA_DIR", str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = secret_key(DATA_DIR / ".secret_key")
DEBUG = env_bool("DJANGO_DEBUG", True)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

REDIS_URL = env_str("REDIS_URL")
SCALED = REDIS_URL is not None

INSTALLED_APPS = [
    "daphne",
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
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = True  # serve from static/ without collectstatic in embedded mode

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "studio:home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 8}},
]

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
