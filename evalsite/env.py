"""Typed environment helpers: a bad value stops start-up with a message naming the variable.

Every variable the project reads goes through these helpers, so the README's settings table and
this module are the single list of knobs (see docs/contracts/platform.md).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

from pipelines.parse import InvalidNumber, parse_decimal, parse_int

_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no"}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if raw.lower() not in _TRUE | _FALSE:
        raise ImproperlyConfigured(f"{name} must be a boolean (1/0/true/false/yes/no), got {raw!r}")
    return raw.lower() in _TRUE


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = parse_int(raw.strip(), name=name, signed=True)
    except InvalidNumber:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = parse_decimal(raw, name=name)
    except InvalidNumber:
        raise ImproperlyConfigured(f"{name} must be a finite number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    items = [part.strip() for part in raw.split(",") if part.strip()]
    if not items:
        raise ImproperlyConfigured(f"{name} must be a comma-separated list, got {raw!r}")
    return items


def env_networks(name: str) -> tuple[str, ...]:
    """A comma-separated list of addresses or CIDR networks (`10.0.0.5, 172.28.0.0/16`), each
    normalised (`10.0.0.5/32`); empty when unset."""
    raw = os.environ.get(name, "")
    out = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            out.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name} must list IP addresses or networks (10.0.0.5, 172.28.0.0/16), got {part!r}"
            ) from None
    return tuple(out)


def trusted_proxy_settings(proto: bool, proxies: tuple[str, ...], hops: int) -> None:
    """Check that the proxy settings describe one consistent chain, naming the variables.

    TRUST_X_FORWARDED_PROTO without a trusted proxy would count every client as the proxy's one
    address (one guesser would lock out everybody), and X-Forwarded-For from an untrusted sender
    is whatever a client wrote (rotating it bypassed the login throttle)."""
    if proxies and hops:
        raise ImproperlyConfigured(
            "set TRUSTED_PROXIES (the proxies' addresses) or TRUSTED_PROXY_HOPS (how many "
            "proxies every request passes), not both"
        )
    if proto and not proxies and not hops:
        raise ImproperlyConfigured(
            "TRUST_X_FORWARDED_PROTO=true needs TRUSTED_PROXIES (the reverse proxy's address, "
            "e.g. 172.28.0.10) or TRUSTED_PROXY_HOPS=1: behind a proxy every client would "
            "otherwise share its address"
        )


def env_path(name: str, default: Path) -> Path:
    raw = os.environ.get(name)
    if raw is None:
        return default
    path = Path(raw)
    if not path.is_absolute():
        raise ImproperlyConfigured(f"{name} must be an absolute path, got {raw!r}")
    return path


# SQLite is written by the web process and the worker at the same time: WAL lets readers run
# beside one writer, the busy timeout waits for the lock instead of failing at once, and
# IMMEDIATE transactions take the write lock at BEGIN so two writers never deadlock on upgrade.
SQLITE_OPTIONS: dict[str, Any] = {
    "timeout": 30,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}


def database_from_url(name: str, url: str) -> dict[str, Any]:
    """Parse `sqlite:////abs/path` or `postgres://user:pass@host:port/db` into Django settings."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        # sqlite:////abs/path -> "/abs/path"; sqlite:///relative is refused (where would it be?)
        path = unquote(parts.path)[1:]
        if parts.netloc or not path.startswith("/") or path == "/":
            raise ImproperlyConfigured(
                f"{name} must look like sqlite:////absolute/path/db.sqlite3, got {url!r}"
            )
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": path, "OPTIONS": SQLITE_OPTIONS}
    if scheme in {"postgres", "postgresql", "pgsql"}:
        dbname = unquote(parts.path.lstrip("/"))
        if not parts.hostname and not dbname:
            raise ImproperlyConfigured(
                f"{name} must look like postgres://user:password@host:5432/dbname, got {url!r}"
            )
        options: dict[str, Any] = {}
        for key, values in parse_qs(parts.query).items():
            options[key] = values[-1]
        try:
            port = parts.port
        except ValueError:
            raise ImproperlyConfigured(f"{name} has an invalid port: {url!r}") from None
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": dbname or "postgres",
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(port or ""),
            "OPTIONS": options,
            # Persistent connections: a new PostgreSQL connection per request costs more than
            # the whole "submit + fetch next" of a rating (bench/rating_load.py measures it).
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    raise ImproperlyConfigured(
        f"{name} has an unsupported scheme {scheme!r} (use sqlite:////abs/path or "
        f"postgres://user@host:5432/db), got {url!r}"
    )


#: The embedded broker's transport: kombu's filesystem one with atomic message writes.
FILESYSTEM_TRANSPORT = "evalsite.core.broker:Transport"


def broker_transport(url: str) -> str | None:
    """The transport class for a validated broker URL: ours for filesystem://, kombu's otherwise."""
    return FILESYSTEM_TRANSPORT if url == "filesystem://" else None


def broker_from_url(name: str, url: str, broker_root: Path) -> tuple[str, dict[str, Any]]:
    """Validate the broker URL and return (url, transport options)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "filesystem":
        folders = {
            "data_folder_in": broker_root / "queue",
            "data_folder_out": broker_root / "queue",
            "processed_folder": broker_root / "processed",
            "control_folder": broker_root / "control",
        }
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {key: str(value) for key, value in folders.items()}
        # Processed messages are not kept: the database, not the broker, is the record of work.
        options["store_processed"] = False
        # An idle worker polls its queues' folder this often, so a chunk waits half of it on
        # average after the previous one (kombu's default 1 s). Measured: 20 ms instead of 100 ms
        # cut the mean gap between a worker's chunks from 65 to 10 ms (throughput bench, 15
        # chunks per run) for 1 % more of a core in an idle worker (1.6 % instead of 0.65 %).
        options["polling_interval"] = 0.02
        return "filesystem://", options
    if scheme in {"redis", "rediss"}:
        # Redis redelivers unacked messages only after this; the job reaper makes recovery timely.
        return url, {"visibility_timeout": 3600}
    if scheme in {"amqp", "pyamqp"}:
        return url, {}
    raise ImproperlyConfigured(
        f"{name} has an unsupported scheme {scheme!r} (use filesystem:// or "
        f"redis://host:6379/0), got {url!r}"
    )


def secret_key(var_dir: Path) -> str:
    """SECRET_KEY from the environment, else generated once into var/secret_key (untracked)."""
    raw = os.environ.get("SECRET_KEY")
    if raw is not None:
        if len(raw) < 16:
            raise ImproperlyConfigured("SECRET_KEY must be at least 16 characters")
        return raw
    key_file = var_dir / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    from django.core.management.utils import get_random_secret_key

    var_dir.mkdir(parents=True, exist_ok=True)
    key = get_random_secret_key()
    tmp = key_file.with_suffix(".tmp")
    tmp.write_text(key)
    tmp.chmod(0o600)
    try:
        os.link(tmp, key_file)  # atomic create-if-absent: two processes agree on one key
    except FileExistsError:
        pass
    tmp.unlink(missing_ok=True)
    return key_file.read_text().strip()


#: The backend of `s3://` storage: django-storages' S3 one (boto3), any S3-protocol server.
S3_BACKEND = "storages.backends.s3.S3Storage"
FILESYSTEM_BACKEND = "django.core.files.storage.FileSystemStorage"
#: S3 bucket names: 3–63 characters, lower-case letters, digits, dots and hyphens, starting and
#: ending with a letter or digit (the rule every S3-protocol server applies).
_BUCKET_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")


def storage_url(name: str, url: str) -> tuple[str, str, str]:
    """Validate `file://` or `s3://BUCKET[/PREFIX]`: (scheme, bucket, prefix)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc or parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ImproperlyConfigured(
                f"{name}=file:// stores files under MEDIA_ROOT and takes no path (set MEDIA_ROOT "
                f"to move it), got {url!r}"
            )
        return "file", "", ""
    if scheme == "s3":
        bucket, prefix = parts.netloc, parts.path.strip("/")
        ok = (
            3 <= len(bucket) <= 63
            and set(bucket) <= _BUCKET_CHARS
            and bucket[0].isalnum()
            and bucket[-1].isalnum()
            and ".." not in bucket
        )
        if not ok:
            raise ImproperlyConfigured(
                f"{name} must name a bucket (3-63 lower-case letters, digits, '.' or '-'), like "
                f"s3://evalsite or s3://evalsite/prefix, got {url!r}"
            )
        bad_prefix = any(p in {"", ".", ".."} for p in prefix.split("/")) if prefix else False
        if bad_prefix or parts.query or parts.fragment or "\\" in prefix:
            raise ImproperlyConfigured(
                f"{name} has an invalid prefix (folders separated by '/', no '.' or '..', no "
                f"query), got {url!r}"
            )
        return "s3", bucket, prefix
    raise ImproperlyConfigured(
        f"{name} has an unsupported scheme {scheme!r} (use file:// or s3://BUCKET[/PREFIX]), "
        f"got {url!r}"
    )


def env_http_url(name: str) -> str | None:
    """An http(s):// URL (an S3 endpoint), or None when unset."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return None
    parts = urlsplit(raw)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in {"http", "https"} or not parts.hostname or not port_ok:
        raise ImproperlyConfigured(
            f"{name} must be an http:// or https:// URL like http://127.0.0.1:9000, got {raw!r}"
        )
    return raw


def storages_from_url(
    name: str,
    url: str,
    *,
    endpoint_url: str | None,
    region: str | None,
    access_key: str | None,
    secret_key_: str | None,
) -> dict[str, Any]:
    """Django's `STORAGES["default"]` for a validated STORAGE_URL.

    S3: no ACLs (the bucket's policy decides; many S3-protocol servers refuse ACLs), files
    overwritten in place under their own key (keys are content- or id-addressed, so a retried
    write puts the same bytes under the same key; a renamed copy would orphan the first), and
    no querystring auth on URLs (pages never hand a key to a browser: views stream the bytes).
    """
    scheme, bucket, prefix = storage_url(name, url)
    if scheme == "file":
        # No location: FileSystemStorage follows settings.MEDIA_ROOT (and its overrides).
        return {"BACKEND": FILESYSTEM_BACKEND}
    options: dict[str, Any] = {
        "bucket_name": bucket,
        "location": prefix,
        "default_acl": None,
        "file_overwrite": True,
        "querystring_auth": False,
        "endpoint_url": endpoint_url,
        "region_name": region,
    }
    if access_key is not None or secret_key_ is not None:
        if not access_key or not secret_key_:
            raise ImproperlyConfigured(
                "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither (boto3 then "
                "finds credentials itself: instance role, ~/.aws)"
            )
        options["access_key"] = access_key
        options["secret_key"] = secret_key_
    return {"BACKEND": S3_BACKEND, "OPTIONS": options}


def env_region(name: str) -> str | None:
    """An S3 region name (`us-east-1`, `eu-central-1`), or None when unset."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return None
    if not (len(raw) <= 64 and raw[0].isalnum() and set(raw) <= _BUCKET_CHARS - {"."}):
        raise ImproperlyConfigured(
            f"{name} must be a region name like us-east-1 (lower-case letters, digits and '-'), "
            f"got {raw!r}"
        )
    return raw
