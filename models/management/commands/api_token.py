"""`python manage.py api_token create|revoke|show --user NAME [--scopes upload,evaluate,report]
[--expires-days N] [--name TEXT]` — the API-tokens page as a command (CI users, operators).

`create` prints the new key on stdout (once; it replaces the user's previous key). Exit status:
0 done, 1 bad input (unknown user or scope, a scope beyond the user's role, a bad expiry).
"""

from __future__ import annotations

import sys
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandParser
from rest_framework.authtoken.models import Token

from evalsite.core.models import TokenPolicy
from evalsite.core.scopes import SCOPES, role_scopes
from models.services.tokens import api_token_create, api_token_revoke, token_expiry


class Command(BaseCommand):
    help = "Create, revoke or show a user's API token (scopes, expiry, last use)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["create", "revoke", "show"])
        parser.add_argument("--user", required=True, help="username")
        parser.add_argument(
            "--scopes", default="",
            help=f"comma-separated, of: {', '.join(SCOPES)} (default: all of the user's role)",
        )  # fmt: skip
        parser.add_argument("--expires-days", type=int, default=0, help="0: never (default)")
        parser.add_argument("--name", default="", help="what the key is for")

    def handle(self, *args: Any, **opts: Any) -> None:
        user = User.objects.filter(username=opts["user"]).first()
        if user is None:
            self._fail(f"no user {opts['user']!r}")
            return
        if opts["action"] == "revoke":
            done = api_token_revoke(user=user)
            self.stdout.write("revoked" if done else f"{user.username} had no API token")
            return
        if opts["action"] == "show":
            token = Token.objects.filter(user=user).first()
            if token is None:
                self.stdout.write(f"{user.username} has no API token")
                return
            policy = TokenPolicy.objects.filter(token=token).first()
            scopes = policy.scopes if policy else role_scopes(user)
            expires = policy.expires_at if policy and policy.expires_at else "never"
            used = (
                f"{policy.last_used_at.isoformat(timespec='seconds')} from {policy.last_used_from}"
                if policy and policy.last_used_at
                else "never"
            )
            self.stdout.write(
                f"key {token.key[:6]}…  scopes {','.join(scopes)}  expires {expires}  "
                f"last used {used}"
            )
            return
        try:
            token = api_token_create(
                user=user,
                scopes=opts["scopes"] or None,
                expires_at=token_expiry(opts["expires_days"]),
                name=opts["name"],
            )
        except (ValueError, PermissionDenied) as exc:
            self._fail(str(exc))
            return
        self.stdout.write(token.key)

    def _fail(self, message: str) -> None:
        self.stderr.write(f"error: {message}")
        sys.exit(1)
