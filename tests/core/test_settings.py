"""Settings come from the environment; a bad value stops start-up naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from evalsite.env import broker_from_url, database_from_url, env_bool, env_int

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.no_services


def run_check(**env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    full.update(env)
    full["DJANGO_SETTINGS_MODULE"] = "evalsite.settings"
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DEBUG": "maybe"}, "DEBUG must be a boolean"),
        ({"DATABASE_URL": "nonsense://"}, "DATABASE_URL has an unsupported scheme 'nonsense'"),
        ({"DATABASE_URL": "sqlite:///relative.db"}, "DATABASE_URL must look like sqlite:////"),
        ({"CELERY_BROKER_URL": "carrier-pigeon://x"}, "CELERY_BROKER_URL has an unsupported"),
        ({"MEDIA_ROOT": "relative/media"}, "MEDIA_ROOT must be an absolute path"),
        ({"JOB_LEASE_SECONDS": "soon"}, "JOB_LEASE_SECONDS must be an integer"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY must be at least 16 characters"),
        ({"TRUSTED_PROXIES": "10.0.0.5, nginx"}, "TRUSTED_PROXIES must list IP addresses"),
        ({"TRUST_X_FORWARDED_PROTO": "true"}, "TRUST_X_FORWARDED_PROTO=true needs TRUSTED_PROXIES"),
        ({"TRUSTED_PROXIES": "10.0.0.5", "TRUSTED_PROXY_HOPS": "1"}, "not both"),
        ({"TRUSTED_PROXY_HOPS": "²"}, "TRUSTED_PROXY_HOPS must be an integer"),
        ({"LOGIN_FAILURE_LIMIT": "١٢"}, "LOGIN_FAILURE_LIMIT must be an integer"),
        ({"DATASET_ZIP_MAX_RATIO": "inf"}, "DATASET_ZIP_MAX_RATIO must be a finite number"),
        ({"STORAGE_URL": "ftp://files"}, "STORAGE_URL has an unsupported scheme 'ftp'"),
        ({"STORAGE_URL": "s3://Bad_Bucket"}, "STORAGE_URL must name a bucket"),
        ({"S3_ENDPOINT_URL": "localhost:9000"}, "S3_ENDPOINT_URL must be an http:// or https://"),
        ({"S3_REGION": "US East"}, "S3_REGION must be a region name"),
        ({"STORAGE_URL": "s3://bucket", "AWS_ACCESS_KEY_ID": "AK"}, "AWS_SECRET_ACCESS_KEY"),
        ({"WORKER_CACHE_MAX_MB": "0"}, "WORKER_CACHE_MAX_MB must be >= 1"),
        ({"WORKER_CACHE_DIR": "cache"}, "WORKER_CACHE_DIR must be an absolute path"),
    ],
)
def test_bad_environment_stops_manage_check_naming_the_variable(env, named):
    result = run_check(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert named in result.stderr


def test_default_environment_passes_manage_check():
    result = run_check()
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_sqlite_url_parses_to_wal_immediate_with_busy_timeout():
    db = database_from_url("DATABASE_URL", "sqlite:////tmp/x/db.sqlite3")
    assert db["NAME"] == "/tmp/x/db.sqlite3"
    assert db["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert db["OPTIONS"]["timeout"] >= 5
    assert "journal_mode=WAL" in db["OPTIONS"]["init_command"]


def test_postgres_url_parses_every_part():
    db = database_from_url(
        "DATABASE_URL", "postgres://user:p%40ss@db.local:6543/evals?sslmode=require"
    )
    assert (db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["NAME"]) == (
        "user",
        "p@ss",
        "db.local",
        "6543",
        "evals",
    )
    assert db["OPTIONS"] == {"sslmode": "require"}


def test_sqlite_connections_run_in_wal_mode(tmp_path, django_db_blocker):
    """Checked on a private SQLite file, so it runs whatever database the suite uses."""
    from django.db.backends.sqlite3.base import DatabaseWrapper

    settings_dict = database_from_url("DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    wrapper = DatabaseWrapper(
        {
            **settings_dict,
            "TIME_ZONE": None,
            "CONN_MAX_AGE": 0,
            "CONN_HEALTH_CHECKS": False,
            "AUTOCOMMIT": True,
            "ATOMIC_REQUESTS": False,
            "TEST": {},
            "USER": "",
            "PASSWORD": "",
            "HOST": "",
            "PORT": "",
        }
    )
    try:
        with django_db_blocker.unblock(), wrapper.cursor() as cur:
            cur.execute("PRAGMA journal_mode")
            assert cur.fetchone()[0] == "wal"
            cur.execute("PRAGMA busy_timeout")
            assert cur.fetchone()[0] >= 5000
    finally:
        wrapper.close()


def test_filesystem_broker_uses_absolute_shared_folders(tmp_path):
    url, options = broker_from_url("CELERY_BROKER_URL", "filesystem://", tmp_path / "broker")
    assert url == "filesystem://"
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        assert Path(options[key]).is_absolute() and Path(options[key]).is_dir()
    assert options["data_folder_in"] == options["data_folder_out"]


def test_typed_helpers(monkeypatch):
    monkeypatch.setenv("X_BOOL", "Yes")
    assert env_bool("X_BOOL", False) is True
    monkeypatch.setenv("X_INT", "0")
    with pytest.raises(ImproperlyConfigured, match="X_INT must be >= 1"):
        env_int("X_INT", 5, minimum=1)
