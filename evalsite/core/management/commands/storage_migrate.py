"""`manage.py storage_migrate --to s3://BUCKET[/PREFIX]`: copy the filesystem store into a bucket.

Every file under MEDIA_ROOT is uploaded under its own relative name (the names the database
keeps), with its sha256 in the object's metadata, and read back and hashed before it counts as
copied. Resumable: an object already there with the same sha256 is skipped, so a run stopped
half-way (or run again after new files appeared) copies only what is missing. Then set
STORAGE_URL to the same URL (and S3_ENDPOINT_URL etc.) and restart: nothing else changes.
Skipped: the import's staging folder and temporary files of writes in progress.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from evalsite.core import files
from evalsite.env import storages_from_url
from pipelines.hashing import BLOCK, sha256_chunks, sha256_file

#: Progress is printed at most this often (and once at the end), not once per file.
PROGRESS_SECONDS = 2.0
#: Left behind in MEDIA_ROOT by work in progress, never stored data.
SKIPPED_FOLDERS = frozenset({".staging"})


def source_files(root: Path) -> Iterator[tuple[str, Path]]:
    """(stored name, path) of every stored file under `root`, in a stable order."""
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in SKIPPED_FOLDERS or not path.is_file() or path.is_symlink():
            continue
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            continue  # an atomic write's temporary file (`evalsite.core.files`)
        yield rel.as_posix(), path


class Command(BaseCommand):
    help = "Copy the filesystem store (MEDIA_ROOT) into an S3 bucket: resumable, verified."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--to", required=True, help="s3://BUCKET[/PREFIX]")

    def handle(self, *args: Any, **opts: Any) -> None:
        url = opts["to"]
        try:
            config = storages_from_url(
                "--to",
                url,
                endpoint_url=settings.S3_ENDPOINT_URL,
                region=settings.S3_REGION,
                access_key=_env("AWS_ACCESS_KEY_ID"),
                secret_key_=_env("AWS_SECRET_ACCESS_KEY"),
            )
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        if config["BACKEND"] != "storages.backends.s3.S3Storage":
            raise CommandError(f"--to must be an s3://BUCKET[/PREFIX] URL, got {url!r}")
        from storages.backends.s3 import S3Storage

        target = S3Storage(**config["OPTIONS"])
        root = Path(settings.MEDIA_ROOT)
        if not root.is_dir():
            raise CommandError(f"MEDIA_ROOT {root} is not a folder: nothing to copy")
        _check_bucket(target, url)
        todo = list(source_files(root))
        total_bytes = sum(path.stat().st_size for _, path in todo)
        self.stdout.write(f"{len(todo)} files ({total_bytes / 2**20:.1f} MiB) in {root} -> {url}")
        copied = skipped = done_bytes = 0
        last = time.monotonic()
        for n, (name, path) in enumerate(todo, 1):
            sha = sha256_file(path)
            if files.stored_sha256(name, st=target) == sha:
                skipped += 1
            else:
                files.upload(target, name, path, sha256=sha)
                got = _read_back_sha256(target, name)
                if got != sha:
                    raise CommandError(
                        f"{name}: the bucket's copy has sha256 {got}, the file {sha}; nothing "
                        "was deleted, run the command again"
                    )
                copied += 1
            done_bytes += path.stat().st_size
            now = time.monotonic()
            if now - last >= PROGRESS_SECONDS or n == len(todo):
                last = now
                self.stdout.write(
                    f"[{n}/{len(todo)}] {done_bytes / 2**20:.1f}/{total_bytes / 2**20:.1f} MiB "
                    f"copied {copied}, already there {skipped}"
                )
        self.stdout.write(
            self.style.SUCCESS(
                f"done: {copied} copied and verified, {skipped} already there (same sha256). "
                f"Now set STORAGE_URL={url} on the web and every worker."
            )
        )


def _env(name: str) -> str | None:
    import os

    return os.environ.get(name)


def _check_bucket(target: Any, url: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        target.connection.meta.client.head_bucket(Bucket=target.bucket_name)
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404:
            raise CommandError(
                f"bucket {target.bucket_name!r} of {url} does not exist: create it first"
            ) from None
        raise CommandError(f"cannot use bucket {target.bucket_name!r}: {exc}") from None
    except BotoCoreError as exc:
        raise CommandError(f"cannot reach the storage for {url}: {exc}") from None


def _read_back_sha256(target: Any, name: str) -> str:
    with files.open_read(name, st=target) as body:
        return sha256_chunks(iter(lambda: body.read(BLOCK), b""))
