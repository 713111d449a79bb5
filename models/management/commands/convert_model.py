"""`python manage.py convert_model F:V|F:ALIAS --to onnx|coreml`: add a converted child version.

Synchronous: converts in a limited child process, registers `<version>+<target>` with the
source as parent, validates it inline and prints the verdict. Exit 1 when conversion or
validation fails, 2 on bad arguments.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evalsite.core.errors import command_error
from models import selectors, services
from models.errors import ConversionFailed, RegistryError, VersionNotFound
from models.management.commands.register_model import BAD_ARGS, REJECTED, describe, user_arg
from models.models import VersionStatus


class Command(BaseCommand):
    help = "Convert a torch.export version to ONNX or Core ML and register it as a child."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ref", help="FAMILY:VERSION or FAMILY:ALIAS")
        parser.add_argument("--to", required=True, choices=services.CONVERSION_TARGETS)
        parser.add_argument("--user", help="username the child is recorded as")

    def handle(self, *args: Any, **opts: Any) -> None:
        user = user_arg(opts["user"])
        try:
            source = selectors.model_version_resolve(opts["ref"], require_ready=True)
        except VersionNotFound as exc:
            raise command_error(exc, returncode=BAD_ARGS) from None
        try:
            child = services.model_version_convert_now(
                source_id=source.pk, target=opts["to"], user=user
            )
        except RegistryError as exc:
            raise CommandError(str(exc), returncode=BAD_ARGS) from exc
        except ConversionFailed as exc:
            raise CommandError(str(exc), returncode=REJECTED) from exc
        self.stdout.write(describe(child))
        if child.status != VersionStatus.READY:
            raise CommandError(f"{child.ref} was rejected", returncode=REJECTED)
