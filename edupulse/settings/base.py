"""Settings shared by every deployment; everything that varies comes from the environment.

With no environment at all EduPulse runs on the embedded default: an SQLite
file under var/, a local-memory cache and Celery in eager mode.
"""

import re
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from edupulse.settings.env import WEEKDAYS, Env

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = Env()

SECRET_KEY = env.text("DJANGO_SECRET_KEY", "insecure-local-only-key-do-not-deploy")
DEBUG = env.flag("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env.items("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.items("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "django_celery_beat",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "apps.common",
    "apps.accounts",
    "apps.students",
    "apps.feedback",
    "apps.dashboards",
    "apps.ingestion",
    "apps.features",
    "apps.predictions",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "edupulse.urls"
WSGI_APPLICATION = "edupulse.wsgi.application"
ASGI_APPLICATION = "edupulse.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
DATABASES = {
    "default": env.database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'edupulse.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.integer("DATABASE_CONN_MAX_AGE", 60, minimum=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the dev server read while a demo load or an import writes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-262144;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # SQLite cannot enforce DataQualityFlag's NULLS NOT DISTINCT key; the code
    # that writes flags replaces its own, so the embedded default is not harmed.
    SILENCED_SYSTEM_CHECKS = ["models.W047"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------
REDIS_URL = env.url("REDIS_URL", None, schemes={"redis", "rediss"})
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "edupulse",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth -----------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "dashboards:login"
LOGIN_REDIRECT_URL = "dashboards:caseload"
LOGOUT_REDIRECT_URL = "dashboards:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
OTP_TOTP_ISSUER = "EduPulse"

OIDC_RP_CLIENT_ID = env.text("OIDC_RP_CLIENT_ID", "")
if OIDC_RP_CLIENT_ID:
    INSTALLED_APPS.append("mozilla_django_oidc")
    AUTHENTICATION_BACKENDS.append("apps.accounts.oidc.EduPulseOIDCBackend")
    OIDC_RP_CLIENT_SECRET = env.text("OIDC_RP_CLIENT_SECRET")
    OIDC_OP_AUTHORIZATION_ENDPOINT = env.text("OIDC_OP_AUTHORIZATION_ENDPOINT")
    OIDC_OP_TOKEN_ENDPOINT = env.text("OIDC_OP_TOKEN_ENDPOINT")
    OIDC_OP_USER_ENDPOINT = env.text("OIDC_OP_USER_ENDPOINT")
    OIDC_OP_JWKS_ENDPOINT = env.text("OIDC_OP_JWKS_ENDPOINT")
    OIDC_RP_SIGN_ALGO = env.text("OIDC_RP_SIGN_ALGO", "RS256")

# --- Internationalisation -------------------------------------------------
LANGUAGE_CODE = env.choice("EDUPULSE_DEFAULT_LANGUAGE", "en", {"en", "bn"})
LANGUAGES = [("en", _("English")), ("bn", _("Bengali"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.text("EDUPULSE_TIME_ZONE", "Asia/Dhaka")
USE_I18N = True
USE_TZ = True

# --- School calendar ------------------------------------------------------
# Bangladesh's academic year runs January to December and schools are closed
# on Friday and Saturday; other systems change these two variables.
EDUPULSE_ACADEMIC_YEAR_START = env.month_day("EDUPULSE_ACADEMIC_YEAR_START", "01-01")
EDUPULSE_SCHOOL_DAYS = env.weekdays("EDUPULSE_SCHOOL_DAYS", ["sun", "mon", "tue", "wed", "thu"])
EDUPULSE_WEEK_START = env.choice("EDUPULSE_WEEK_START", "sun", WEEKDAYS)

# --- Static and media -----------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env.text("EDUPULSE_MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Imports --------------------------------------------------------------
# Uploads larger than this are refused before they are read; an XLSX whose
# parts would unpack to more than EDUPULSE_XLSX_MAX_UNPACKED_MB is a zip bomb.
EDUPULSE_UPLOAD_MAX_MB = env.integer("EDUPULSE_UPLOAD_MAX_MB", 200, minimum=1)
EDUPULSE_XLSX_MAX_UNPACKED_MB = env.integer("EDUPULSE_XLSX_MAX_UNPACKED_MB", 2000, minimum=1)
# A running import with no heartbeat for this long belongs to a dead worker.
EDUPULSE_IMPORT_STALE_MINUTES = env.integer("EDUPULSE_IMPORT_STALE_MINUTES", 30, minimum=1)
# A training run whose worker has not beaten for this long is marked failed
# (the worker beats every minute while it trains, whatever step it is in).
EDUPULSE_TRAINING_STALE_MINUTES = env.integer("EDUPULSE_TRAINING_STALE_MINUTES", 10, minimum=2)
# A scoring run with no school finished for this long lost its workflow. Above the
# hard task time limit (60 min), since its school tasks may queue behind a training.
EDUPULSE_SCORING_STALE_MINUTES = env.integer("EDUPULSE_SCORING_STALE_MINUTES", 90, minimum=2)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024  # larger uploads stream to a temporary file

# --- Celery ---------------------------------------------------------------
CELERY_BROKER_URL = env.url(
    "CELERY_BROKER_URL", REDIS_URL, schemes={"redis", "rediss", "amqp", "memory"}
)
CELERY_RESULT_BACKEND = env.url(
    "CELERY_RESULT_BACKEND", REDIS_URL, schemes={"redis", "rediss", "cache+memory"}
)
# No broker configured: run tasks inline so the embedded default needs no Redis.
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
if CELERY_TASK_ALWAYS_EAGER:
    # Eager calls still take a producer from the pool; without a URL kombu builds one
    # for an AMQP server on localhost and warns "No hostname was supplied". The
    # in-memory transport is never used for sending here, and never warns.
    CELERY_BROKER_URL = "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = "default"
# Task modules outside an app's tasks.py (autodiscovery reads only tasks.py).
CELERY_IMPORTS = ["apps.predictions.services.update", "apps.predictions.api.tasks"]
CELERY_TASK_ROUTES = {
    "apps.ingestion.tasks.*": {"queue": "ingest"},
    "apps.features.tasks.*": {"queue": "ml"},
    "apps.predictions.tasks.*": {"queue": "ml"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.integer("CELERY_TASK_SOFT_TIME_LIMIT", 3300, minimum=1)
CELERY_TASK_TIME_LIMIT = env.integer("CELERY_TASK_TIME_LIMIT", 3600, minimum=1)
CELERY_RESULT_EXPIRES = 7 * 24 * 3600
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE


# --- API ------------------------------------------------------------------
def _throttle_rate(name: str, default: str) -> str:
    """A DRF rate like 120/min; a typo stops start-up instead of disabling the limit."""
    value = env.text(name, default)
    if not re.fullmatch(r"[1-9][0-9]*/(s|sec|m|min|h|hour|d|day)", value):
        raise ImproperlyConfigured(f"{name}={value!r} is not a rate like 120/min.")
    return value


REST_FRAMEWORK = {
    # Token first: an unauthenticated request then gets 401 with WWW-Authenticate: Token
    # (DRF answers 403 when the first class is the session, which has no such header).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.common.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.common.exceptions.api_exception_handler",
    # Per user (session or token alike), per token (a leaked script token cannot use
    # up its owner's browser budget), anonymous, and scoped for the expensive calls:
    # one class counts them all in one round trip (apps/common/throttling.py).
    "DEFAULT_THROTTLE_CLASSES": ["apps.common.throttling.RequestThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": _throttle_rate("EDUPULSE_API_RATE_ANON", "60/min"),
        "user": _throttle_rate("EDUPULSE_API_RATE_USER", "1200/min"),
        "token": _throttle_rate("EDUPULSE_API_RATE_TOKEN", "1200/min"),
        "predict": _throttle_rate("EDUPULSE_API_RATE_PREDICT", "600/min"),
        "train": _throttle_rate("EDUPULSE_API_RATE_TRAIN", "10/hour"),
    },
}
# How long an API token's user, permissions and scope are cached; changes to them
# take effect at once anyway (apps/common/authentication.py). 0: no cache.
EDUPULSE_API_AUTH_CACHE_SECONDS = env.integer("EDUPULSE_API_AUTH_CACHE_SECONDS", 300, minimum=0)
# Above this many students POST /api/v1/predict/batch becomes a Celery task (202).
EDUPULSE_API_BATCH_SYNC_MAX = env.integer("EDUPULSE_API_BATCH_SYNC_MAX", 200, minimum=1)
EDUPULSE_API_BATCH_MAX = env.integer("EDUPULSE_API_BATCH_MAX", 100_000, minimum=1)
SPECTACULAR_SETTINGS = {
    "TITLE": "EduPulse API",
    "DESCRIPTION": "Student early-warning system: schools, students, risk scores.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.common.openapi.add_error_responses",
    ],
    # Read-only fields (ids, computed risk) stay out of the request bodies.
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Model artefacts ------------------------------------------------------
EDUPULSE_MODEL_DIR = Path(env.text("EDUPULSE_MODEL_DIR", str(VAR_DIR / "models")))
# The dropout label's horizon after the prediction week, in days; 0 = the end of
# that academic year (DESIGN.md's default).
EDUPULSE_LABEL_HORIZON_DAYS = env.integer("EDUPULSE_LABEL_HORIZON_DAYS", 0, minimum=0)
# Scoring (docs/scoring.md): which tiers get explanations, how many reasons and
# integration steps, how long a single prediction is cached, the rise in
# percentage points that alerts a counselor, and whether the web process loads
# the model at start.
EDUPULSE_EXPLAIN_TIERS = env.items("EDUPULSE_EXPLAIN_TIERS", ["high", "medium"])
EDUPULSE_EXPLAIN_TOP_K = env.integer("EDUPULSE_EXPLAIN_TOP_K", 3, minimum=1)
EDUPULSE_EXPLAIN_STEPS = env.integer("EDUPULSE_EXPLAIN_STEPS", 8, minimum=1)
EDUPULSE_PREDICTION_CACHE_SECONDS = env.integer(
    "EDUPULSE_PREDICTION_CACHE_SECONDS", 3600, minimum=1
)
EDUPULSE_ALERT_RISE = env.integer("EDUPULSE_ALERT_RISE", 15, minimum=1)
EDUPULSE_WARM_MODEL = env.flag("EDUPULSE_WARM_MODEL", False)
EDUPULSE_SCORE_BATCH_WAIT_MS = env.integer("EDUPULSE_SCORE_BATCH_WAIT_MS", 5, minimum=0)
# torch threads in each Celery worker child (edupulse/celery.py); 0 = torch's
# default, one per core. With `--concurrency N` on C cores, C / N.
EDUPULSE_TORCH_THREADS = env.integer("EDUPULSE_TORCH_THREADS", 0, minimum=0)
EMAIL_HOST = env.text("EDUPULSE_EMAIL_HOST", "")
# Experiment tracking is optional: unset means training runs are recorded only on
# their ModelVersion rows.
MLFLOW_TRACKING_URI = env.url(
    "MLFLOW_TRACKING_URI",
    None,
    schemes={"file", "http", "https", "sqlite", "postgresql", "mysql", "databricks"},
)
MLFLOW_EXPERIMENT_NAME = env.text("MLFLOW_EXPERIMENT_NAME", "edupulse-dropout")

# --- Logging --------------------------------------------------------------
# Personal data (names, birth dates, contacts) is never logged: log ids only.
LOG_LEVEL = env.choice("EDUPULSE_LOG_LEVEL", "INFO", {"DEBUG", "INFO", "WARNING", "ERROR"})
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
