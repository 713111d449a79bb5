"""`python manage.py register_model FILE --family F --version V [...]` (platform contract).

`register_model --external --family F --version V [--notes T] [--parent V] [--provenance T]`
registers a version with no runnable file (reports contract): ready at once, never run by a worker;
its runs come from `import_predictions`.

Validates inline by default (the same function the worker runs) and prints the verdict.
Exit codes: 0 ready (or unchanged), 1 rejected, 2 bad arguments (nothing written).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from models import services
from models.errors import ConversionFailed, RegistryError
from models.forms import refuse_non_finite
from models.models import ModelVersion, VersionStatus

BAD_ARGS = 2
REJECTED = 1


def describe(version: ModelVersion) -> str:
    """One verdict line: status, format, digest, timings or the exact reason."""
    report = version.validation_report or {}
    parts = [f"{version.ref}: {version.status}", version.format]
    if version.sha256:
        parts.append(f"sha256 {version.sha256[:12]}")
    if report.get("load_ms") is not None:
        parts.append(f"load {report['load_ms']:.0f} ms")
    if report.get("latency_ms") is not None:
        parts.append(f"latency {report['latency_ms']:.1f} ms")
    line = ", ".join(parts)
    if version.status_note:
        line += f" ({version.status_note})"
    if version.status == VersionStatus.REJECTED:
        line += f"\n  reason: {version.rejection_reason}"
    return line


def user_arg(username: str | None) -> User | None:
    if not username:
        return None  # the operator at the server's shell
    user = User.objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"--user {username}: no such user", returncode=BAD_ARGS)
    return user


class Command(BaseCommand):
    help = "Register a model version (file + spec), validate it, optionally alias/convert it."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # The contract's `--version V` replaces Django's built-in `--version` (print Django's).
        kwargs.setdefault("conflict_handler", "resolve")
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", help="model file (.pt2, TorchScript, .onnx, ...)")
        parser.add_argument("--family", required=True)
        parser.add_argument("--version", required=True, help="starts with a digit, e.g. 1.1.0")
        parser.add_argument("--spec", help="model spec JSON (default: FILE.spec.json)")
        parser.add_argument("--parent", help="parent version in the same family (lineage)")
        parser.add_argument("--alias", help="point this alias at the version once it is ready")
        parser.add_argument("--reason", default="", help="why the alias moves (history)")
        parser.add_argument("--notes", default="")
        parser.add_argument("--builtin", help="register a built-in runner (no FILE)")
        parser.add_argument(
            "--external",
            action="store_true",
            help="no runnable file: results come from import_predictions (predictions made "
            "on a device, by another framework or a vendor)",
        )
        parser.add_argument(
            "--provenance", default="", help="where the model and its predictions come from"
        )
        parser.add_argument(
            "--convert", default="", help="comma-separated conversions to add: onnx,coreml"
        )
        parser.add_argument("--user", help="username the registration is recorded as")
        parser.add_argument(
            "--no-wait", action="store_true", help="enqueue validation instead of waiting"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        user = user_arg(opts["user"])
        targets = [t.strip() for t in opts["convert"].split(",") if t.strip()]
        bad = [t for t in targets if t not in services.CONVERSION_TARGETS]
        if bad:
            raise CommandError(
                f"--convert {','.join(bad)}: choose from {','.join(services.CONVERSION_TARGETS)}",
                returncode=BAD_ARGS,
            )
        if opts["no_wait"] and (opts["alias"] or targets):
            raise CommandError(
                "--alias and --convert need the validation verdict; drop --no-wait",
                returncode=BAD_ARGS,
            )
        if opts["external"]:
            self._external(opts, user)
            return
        file, spec, card = self._inputs(opts)
        validate = "job" if opts["no_wait"] else "inline"
        result = self._register(opts, user, file=file, spec=spec, card=card, validate=validate)
        version = result.version
        if not result.created:
            self.stdout.write(f"unchanged: {version.ref} already holds this file")
        if opts["no_wait"] and result.created and version.status != VersionStatus.REJECTED:
            job = version.validation_job
            self.stdout.write(f"{version.ref}: queued validation job #{job.pk if job else '?'}")
            return
        self.stdout.write(describe(version))
        if version.status != VersionStatus.READY:
            raise CommandError(f"{version.ref} was rejected", returncode=REJECTED)
        if opts["alias"]:
            self._alias(version, opts["alias"], opts["reason"], user)
        for target in targets:
            try:
                child = services.model_version_convert_now(
                    source_id=version.pk, target=target, user=user
                )
            except (ConversionFailed, RegistryError) as exc:
                raise CommandError(str(exc), returncode=REJECTED) from exc
            self.stdout.write(describe(child))
            if child.status != VersionStatus.READY:
                raise CommandError(f"{child.ref} was rejected", returncode=REJECTED)

    def _external(self, opts: dict[str, Any], user: Any) -> None:
        clashing = [f for f in ("file", "builtin", "spec", "convert") if opts[f]]
        if clashing:
            names = ", ".join("FILE" if f == "file" else f"--{f}" for f in clashing)
            raise CommandError(
                f"--external takes no {names}: an external version has no runnable file",
                returncode=BAD_ARGS,
            )
        result = self._register(opts, user, file=None, spec=None, external=True)
        if not result.created:
            self.stdout.write(f"unchanged: {result.version.ref} is already registered")
        self.stdout.write(describe(result.version))
        if opts["alias"]:
            self._alias(result.version, opts["alias"], opts["reason"], user)

    def _register(self, opts: dict[str, Any], user: Any, **what: Any) -> services.Registration:
        """Register the version the options name, from `what` (its file and spec, or none)."""
        try:
            return services.model_version_register(
                family=opts["family"], version=opts["version"], user=user,
                parent=opts["parent"], notes=opts["notes"], provenance=opts["provenance"], **what,
            )  # fmt: skip
        except RegistryError as exc:
            raise CommandError(str(exc), returncode=BAD_ARGS) from exc

    def _inputs(self, opts: dict[str, Any]) -> tuple[Path | None, dict[str, Any] | None, str]:
        if opts["builtin"]:
            if opts["file"]:
                raise CommandError("give FILE or --builtin, not both", returncode=BAD_ARGS)
            from pipelines.runners.builtin import builtin_spec

            if opts["spec"]:
                return None, self._read_spec(Path(opts["spec"])), ""
            try:
                return None, builtin_spec(opts["builtin"]), ""
            except ValueError as exc:
                raise CommandError(str(exc), returncode=BAD_ARGS) from exc
        if not opts["file"]:
            raise CommandError("FILE is required (or --builtin NAME)", returncode=BAD_ARGS)
        file = Path(opts["file"])
        if not file.is_file():
            raise CommandError(f"{file}: no such file", returncode=BAD_ARGS)
        spec_path = Path(opts["spec"]) if opts["spec"] else Path(f"{file}.spec.json")
        if not spec_path.is_file():
            raise CommandError(
                f"{spec_path}: no spec file (ship FILE.spec.json beside the model or pass --spec)",
                returncode=BAD_ARGS,
            )
        spec = self._read_spec(spec_path)
        return file, spec, services.card_for_spec(spec, spec_path)

    def _read_spec(self, path: Path) -> dict[str, Any]:
        try:
            value = json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse_non_finite)
        except (OSError, ValueError) as exc:  # ValueError: bad JSON, NaN/Infinity, bad UTF-8
            raise CommandError(
                f"{path}: cannot read the spec ({exc})", returncode=BAD_ARGS
            ) from exc
        if not isinstance(value, dict):
            raise CommandError(f"{path}: the spec must be a JSON object", returncode=BAD_ARGS)
        return value

    def _alias(self, version: ModelVersion, alias: str, reason: str, user: Any) -> None:
        try:
            services.alias_move(
                family=version.family,
                name=alias,
                version=version,
                user=user,
                reason=reason or f"registered {version.version} with register_model",
            )
        except PermissionDenied as exc:
            raise CommandError(str(exc), returncode=BAD_ARGS) from exc
        except RegistryError as exc:
            raise CommandError(str(exc), returncode=BAD_ARGS) from exc
        self.stdout.write(f"{version.family.name}:{alias} -> {version.version}")
