"""Django settings: one module, every knob read from the environment through typed helpers.

Defaults give the embedded set-up (SQLite + the server-less filesystem broker); setting
DATABASE_URL and CELERY_BROKER_URL moves the same code to PostgreSQL + Redis.
"""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from pathlib import Path

from kombu import Exchange, Queue

from evalsite.env import (
    broker_from_url,
    broker_transport,
    database_from_url,
    env_bool,
    env_float,
    env_http_url,
    env_int,
    env_list,
    env_networks,
    env_path,
    env_region,
    env_str,
    secret_key,
    storages_from_url,
    trusted_proxy_settings,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env_path("VAR_DIR", BASE_DIR / "var")

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = secret_key(VAR_DIR)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list(
    "CSRF_TRUSTED_ORIGINS", ["http://localhost:8000", "http://127.0.0.1:8000"]
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",  # OpenAPI 3 of the REST API: /api/schema/, browsable at /api/docs/
    "drf_spectacular_sidecar",  # Swagger UI's assets served from our static files (no CDN)
    "axes",  # login throttling (evalsite/core/throttle.py)
    "evalsite.core",
    "evalsite.datasets",
    "models",
    "evalsite.evals",
    "ratings",
    "evalsite.releases",
    "evalsite.fairness",
]

MIDDLEWARE = [
    "ratings.timing.ServerTimingMiddleware",  # Server-Timing header: server time per request
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "evalsite.core.tokens.TokensOnlyForTheApiMiddleware",  # a token on a web page: 403
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "evalsite.core.middleware.NotFoundMiddleware",  # a selector's NotFound -> the 404 page
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into its 429 answer
]

ROOT_URLCONF = "evalsite.urls"
WSGI_APPLICATION = "evalsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "evalsite" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "evalsite.core.roles.nav_context",
            ],
        },
    },
]

DATABASES = {
    "default": database_from_url(
        "DATABASE_URL", env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Security ---------------------------------------------------------------------------------
# Logins: per user and per client address; wrong API tokens count per address
# (evalsite/core/throttle.py). A lockout answers 429 and holds even for the right password.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 20, minimum=1)
LOGIN_COOLOFF_MINUTES = env_int("LOGIN_COOLOFF_MINUTES", 15, minimum=1)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = "evalsite.core.throttle.lockout_parameters"
# Not reset on success: a success would also wipe the failures recorded for its address, so an
# attacker with one account could log in between guesses at others. Failures age out instead.
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_CALLABLE = "evalsite.core.throttle.lockout_response"
AXES_VERBOSE = False
# A failure from a locked-out client writes nothing: rows stay bounded by the failure limit per
# address and per username, whatever a client rotates (usernames, user agents).
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto. The client's address (throttle,
# lockout rows, logs) is REMOTE_ADDR unless that is a trusted proxy: then X-Forwarded-For is read
# from the right, past the trusted proxies (evalsite/core/clientaddr.py). Never a header a direct
# client could write.
TRUST_X_FORWARDED_PROTO = env_bool("TRUST_X_FORWARDED_PROTO", False)
if TRUST_X_FORWARDED_PROTO:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
TRUSTED_PROXIES = env_networks("TRUSTED_PROXIES")
TRUSTED_PROXY_HOPS = env_int("TRUSTED_PROXY_HOPS", 0, minimum=0)
trusted_proxy_settings(TRUST_X_FORWARDED_PROTO, TRUSTED_PROXIES, TRUSTED_PROXY_HOPS)
AXES_CLIENT_IP_CALLABLE = "evalsite.core.clientaddr.client_address"
# HTTPS: off by default (the embedded demo serves plain http on localhost); the production
# profile (docker-compose.yml) turns them on, and `check --deploy` is clean there.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # the container health check calls it over plain http
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
# Content-Security-Policy: scripts only from our own static files (no inline code, no eval);
# styles also inline because plotly.js writes style attributes as it draws.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns when it is missing
STATICFILES_DIRS = [BASE_DIR / "evalsite" / "static"]
WHITENOISE_USE_FINDERS = True  # serve from app folders without collectstatic (demo, tests)
MEDIA_ROOT = env_path("MEDIA_ROOT", VAR_DIR / "media")
MEDIA_URL = "/media/"
# Where every stored file lives (evalsite/core/files.py): file:// = MEDIA_ROOT on this machine (a
# worker elsewhere must mount it), s3://BUCKET[/PREFIX] = an S3-protocol bucket every machine
# reaches over HTTP (S3_ENDPOINT_URL for one that is not AWS). `manage.py storage_migrate` copies
# MEDIA_ROOT into a bucket.
STORAGE_URL = env_str("STORAGE_URL", "file://")
S3_ENDPOINT_URL = env_http_url("S3_ENDPOINT_URL")
S3_REGION = env_region("S3_REGION")
STORAGES = {
    "default": storages_from_url(
        "STORAGE_URL",
        STORAGE_URL,
        endpoint_url=S3_ENDPOINT_URL,
        region=S3_REGION,
        access_key=os.environ.get("AWS_ACCESS_KEY_ID"),
        secret_key_=os.environ.get("AWS_SECRET_ACCESS_KEY"),
    ),
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# A worker's local copies of stored files when storage is a bucket (pipelines/filecache.py):
# set files by their sha256, model files per version; least recently used evicted past the cap.
WORKER_CACHE_DIR = env_path("WORKER_CACHE_DIR", VAR_DIR / "worker-cache")
WORKER_CACHE_MAX_MB = env_int("WORKER_CACHE_MAX_MB", 4096, minimum=1)

# Scratch folders of imports, uploads and conversions: the system temp folder unless TEMP_ROOT
# names another (created on first use; the tests give each run, and some each test, their own).
TEMP_ROOT = env_path("TEMP_ROOT", Path(tempfile.gettempdir()))
# Uploads: model files and dataset zips can be large; Django streams them to a temp file.
MAX_UPLOAD_MB = env_int("MAX_UPLOAD_MB", 512, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# Held-out set imports: decompression-bomb pixel limit per image, largest archive (uncompressed),
# and the decode/hash process pool size (inside a Celery worker, threads are used instead).
DATASET_MAX_PIXELS = env_int("DATASET_MAX_PIXELS", 40_000_000, minimum=1)
DATASET_ZIP_MAX_BYTES = env_int("DATASET_ZIP_MAX_BYTES", 20 * 2**30, minimum=1)
# Whole-archive bomb limits: photos and PNG masks zip at ~1:1, so 20:1 is generous.
DATASET_ZIP_MAX_RATIO = env_float("DATASET_ZIP_MAX_RATIO", 20.0, minimum=1.0)
DATASET_ZIP_MAX_ENTRIES = env_int("DATASET_ZIP_MAX_ENTRIES", 200_000, minimum=1)
DATASET_IMPORT_PROCESSES = env_int("DATASET_IMPORT_PROCESSES", os.cpu_count() or 1, minimum=1)

# Model code runs in a child process with these limits (validation of uploads, evaluation runs):
# a 512² forward of a model of up to ~100 MB needs well under 2 GB besides torch's own mappings.
MODEL_VALIDATION_MEMORY_MB = env_int("MODEL_VALIDATION_MEMORY_MB", 3072, minimum=256)
MODEL_VALIDATION_CPU_SECONDS = env_int("MODEL_VALIDATION_CPU_SECONDS", 120, minimum=1)
MODEL_VALIDATION_TIMEOUT_S = env_int("MODEL_VALIDATION_TIMEOUT_S", 180, minimum=1)
# Intra-op threads of the model runtime per worker process; 0 = the runtime's default. Several
# worker processes on one machine should share the cores (bench/throughput.py measures it).
EVAL_RUNNER_THREADS = env_int("EVAL_RUNNER_THREADS", 0, minimum=0)
# A worker has the model (in its sandboxed child) predict the next image while it post-processes,
# writes and scores the current one: it then uses two cores, which pays with a core to spare and
# costs when every core already runs a worker (bench/throughput.py measures both settings).
EVAL_PREFETCH = env_bool("EVAL_PREFETCH", False)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "evalsite.core.tokens.ScopedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "evalsite.core.middleware.api_exception_handler",
    # JSON bodies bounded in size and depth, finite numbers only (evalsite/core/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "evalsite.core.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "evalsite.core.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Subject-lifting evaluation platform API",
    "DESCRIPTION": (
        "Token auth: `Authorization: Token <key>` (keys and their scopes on /models/tokens/ or "
        '`manage.py api_token`). Errors answer `{"error": {"code", "message", "fields"?}}` '
        "(`fields`: each bad input field with its messages): 400 bad input, 401 without or "
        "with an expired token, 403 for a role or token scope that may not do this, 404 unknown "
        "object, 409 conflict."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS = broker_from_url(
    "CELERY_BROKER_URL", env_str("CELERY_BROKER_URL", "filesystem://"), VAR_DIR / "broker"
)
# filesystem://: kombu's transport with messages written atomically (evalsite/core/broker.py).
CELERY_BROKER_TRANSPORT = broker_transport(CELERY_BROKER_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # the database holds every outcome (jobs, chunks, results)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 3600, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 3900, minimum=1)
CELERY_TASK_DEFAULT_QUEUE = "default"
# coreml is consumed only by macOS workers (Core ML prediction runs nowhere else); maintenance
# (the reaper) only by the maintenance worker, which runs no chunks, so work never delays it.
WORKER_QUEUES = ("default", "torch", "onnx", "coreml", "maintenance")
CELERY_TASK_QUEUES = [Queue(name, Exchange(name), routing_key=name) for name in WORKER_QUEUES]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# Crash-safe jobs (evalsite.core.jobs): a claimed chunk holds a lease its worker renews by
# heartbeat; the reaper (beat) re-enqueues chunks whose lease expired.
JOB_LEASE_SECONDS = env_int("JOB_LEASE_SECONDS", 60, minimum=2)
JOB_HEARTBEAT_SECONDS = env_float("JOB_HEARTBEAT_SECONDS", 10.0, minimum=0.2)
JOB_MAX_ATTEMPTS = env_int("JOB_MAX_ATTEMPTS", 3, minimum=1)
# A final hook that raised this many times is given up: a done hook fails its job with the
# exception's message; a failed or cancelled hook is recorded as given up. A failed try's claim
# expires after JOB_LEASE_SECONDS before the reaper retries, so 5 tries span about 5 minutes.
JOB_MAX_HOOK_ATTEMPTS = env_int("JOB_MAX_HOOK_ATTEMPTS", 5, minimum=1)
# Database errors in a row that a chunk rides out without consuming an attempt (then they count).
JOB_MAX_INTERRUPTIONS = env_int("JOB_MAX_INTERRUPTIONS", 20, minimum=0)
JOB_REAPER_SECONDS = env_float("JOB_REAPER_SECONDS", 15.0, minimum=0.5)
# A pending chunk the broker holds no message for is resent within two reaper periods (the reaper
# compares queue depths); when the broker cannot be asked, after this long in any case.
JOB_PENDING_RESEND_SECONDS = env_int("JOB_PENDING_RESEND_SECONDS", 300, minimum=1)
WORKER_HEARTBEAT_SECONDS = env_float("WORKER_HEARTBEAT_SECONDS", 5.0, minimum=0.2)
# A worker that runs model code consumes (and reports itself live) once its sandbox forkserver has
# imported torch, waiting at most this long (evalsite.core.bootsteps.SandboxReadyStep).
WORKER_SANDBOX_READY_SECONDS = env_float("WORKER_SANDBOX_READY_SECONDS", 120.0, minimum=0)

# Campaign reports (ratings.services.reports): a burst of ratings marks the stored report dirty
# once and recomputes it this long after the first; a report dirty for longer than STALE (its
# message lost with a worker) is recomputed by beat. Below MIN_PAIR_VOTES votes on a pair (or a
# run), its rates and Bradley–Terry strength are withheld ("not enough votes (12 of 30)").
RATINGS_SNAPSHOT_DEBOUNCE_SECONDS = env_float("RATINGS_SNAPSHOT_DEBOUNCE_SECONDS", 10.0, minimum=0)
# 40 s: four debounce periods, well past a normal recompute; with the 15 s sweep below a refresh
# lost with a killed worker is redone within a minute (a duplicate recompute is harmless).
RATINGS_SNAPSHOT_STALE_SECONDS = env_int("RATINGS_SNAPSHOT_STALE_SECONDS", 40, minimum=1)
RATINGS_SNAPSHOT_SWEEP_SECONDS = 15.0
RATINGS_MIN_PAIR_VOTES = env_int("RATINGS_MIN_PAIR_VOTES", 30, minimum=1)

# The stored leaderboard is rebuilt when its inputs' fingerprint changed (evalsite.releases).
LEADERBOARD_REFRESH_SECONDS = env_float("LEADERBOARD_REFRESH_SECONDS", 10.0, minimum=1.0)

CELERY_BEAT_SCHEDULE = {
    "reap-expired-chunks": {
        "task": "evalsite.core.tasks.reap_jobs",
        "schedule": JOB_REAPER_SECONDS,
        "options": {"queue": "maintenance", "expires": JOB_REAPER_SECONDS * 2},
    },
    "refresh-stale-campaign-reports": {
        "task": "ratings.tasks.refresh_dirty_snapshots",
        "schedule": RATINGS_SNAPSHOT_SWEEP_SECONDS,
        "options": {"queue": "default", "expires": RATINGS_SNAPSHOT_SWEEP_SECONDS * 2},
    },
    "refresh-leaderboard": {
        "task": "releases.refresh_leaderboard",
        "schedule": LEADERBOARD_REFRESH_SECONDS,
        "options": {"queue": "default", "expires": LEADERBOARD_REFRESH_SECONDS * 2},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Every line carries its time and process: worker, beat and web logs are read side by side
    # when a fault is investigated (Celery's own formatter is off: it does not hijack the root).
    "formatters": {
        "timestamped": {
            "format": "%(asctime)s %(levelname)s %(processName)s[%(process)d] %(name)s: %(message)s"
        }
    },
    "filters": {"expected_refusals": {"()": "evalsite.core.logfilters.ExpectedRefusals"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "timestamped",
            "filters": ["expected_refusals"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # coremltools warns at import about untested torch/scikit-learn versions and its missing
        # macOS-only library; none of it is actionable here (register_model printed it all).
        "coremltools": {"level": "ERROR"},
        "axes": {"level": "WARNING"},  # one INFO line per login otherwise
    },
}
