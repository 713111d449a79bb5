"""Test settings: the same settings, with test-only isolation.

The test database must be a file (not SQLite's in-memory default) because integration tests run
real Celery worker processes that open it; the filesystem broker gets its own folders so a running
demo never consumes test messages.
"""

from evalsite.env import broker_from_url, env_str
from evalsite.settings import *  # noqa: F403
from evalsite.settings import DATABASES, VAR_DIR

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}

CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS = broker_from_url(
    "CELERY_BROKER_URL", env_str("CELERY_BROKER_URL", "filesystem://"), VAR_DIR / "test-broker"
)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only
MEDIA_ROOT = VAR_DIR / "test-media"
