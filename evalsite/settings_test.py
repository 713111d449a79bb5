"""Test settings: the same settings, with test-only isolation.

The test database must be a file (not SQLite's in-memory default) because integration tests run
real Celery worker processes that open it. Each test session gets its own database file, broker
folders and media root (keyed by TEST_RUN_ID, which worker subprocesses inherit), so two test
sessions, or a running demo, never share a queue or a database.
"""

import os

from evalsite.env import broker_from_url, broker_transport, env_path, env_str
from evalsite.settings import *  # noqa: F403
from evalsite.settings import DATABASES, VAR_DIR

RUN_ID = os.environ.setdefault("TEST_RUN_ID", str(os.getpid()))
TEST_DIR = VAR_DIR / "test-runs" / RUN_ID
TEST_DIR.mkdir(parents=True, exist_ok=True)

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {"NAME": str(TEST_DIR / "test-db.sqlite3")}
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{RUN_ID}"}

CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS = broker_from_url(
    "CELERY_BROKER_URL", env_str("CELERY_BROKER_URL", "filesystem://"), TEST_DIR / "broker"
)
CELERY_BROKER_TRANSPORT = broker_transport(CELERY_BROKER_URL)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only
MEDIA_ROOT = TEST_DIR / "media"
# A worker process started by a test may be given a cache of its own (the storage end-to-end).
WORKER_CACHE_DIR = env_path("WORKER_CACHE_DIR", TEST_DIR / "worker-cache")
TEMP_ROOT = TEST_DIR / "tmp"  # never the system temp folder, which other programs share
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Queues of concurrent test sessions on one Redis must not mix.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        **CELERY_BROKER_TRANSPORT_OPTIONS,
        "global_keyprefix": f"test-{RUN_ID}:",
    }
