"""Rotating X-Forwarded-For under docker-compose's production profile: the throttle holds.

The settings are compose's own (`x-app-env`: TRUST_X_FORWARDED_PROTO, TRUSTED_PROXIES, HTTPS
redirect and secure cookies), parsed by the same helpers start-up uses. Before, the last
X-Forwarded-For entry was the client's address whoever sent it: 106 logins across usernames and
300 API-token guesses went through unthrottled, each writing a lockout row.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Group, User
from django.test import Client, RequestFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from evalsite.core.clientaddr import client_address
from evalsite.env import env_networks
from tests.test_csp import compose_env

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]

LIMIT = 20  # LOGIN_FAILURE_LIMIT's default
API = "/models/api/families/"
ATTACKER = "203.0.113.50"
HTTPS = {"HTTP_X_FORWARDED_PROTO": "https"}


@pytest.fixture
def production(settings: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """docker-compose's profile; returns the proxy's address (the one TRUSTED_PROXIES names)."""
    env = compose_env()
    assert env["TRUST_X_FORWARDED_PROTO"] == "true"
    monkeypatch.setenv("TRUSTED_PROXIES", env["TRUSTED_PROXIES"])
    settings.TRUSTED_PROXIES = env_networks("TRUSTED_PROXIES")
    settings.TRUSTED_PROXY_HOPS = 0
    settings.TRUST_X_FORWARDED_PROTO = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = env["SECURE_SSL_REDIRECT"] == "true"
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    network = ipaddress.ip_network(settings.TRUSTED_PROXIES[0])
    return str(network.network_address)


@pytest.fixture
def rita(db: Any) -> User:
    user = User.objects.create_user("rita", password="right-password-1")
    user.groups.set(Group.objects.filter(name="researcher"))
    return user


def login(username: str, password: str, remote: str, forwarded: str, agent: str = "ua") -> Any:
    return Client().post("/login/", {"username": username, "password": password},
                         REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded,
                         HTTP_USER_AGENT=agent, **HTTPS)  # fmt: skip


def test_a_direct_client_rotating_the_header_is_throttled_at_the_limit(
    production: str, rita: User
) -> None:
    codes = [login(f"user{i}", "guess", ATTACKER, f"10.{i}.0.1").status_code for i in range(60)]
    assert codes[: LIMIT - 1] == [200] * (LIMIT - 1)  # the form again, with its error
    assert set(codes[LIMIT - 1 :]) == {429}, codes
    # The address, not the header, is what counts: rita from elsewhere is unaffected ...
    assert login("rita", "right-password-1", "198.51.100.7", "").status_code == 302
    # ... and the rows stay bounded by the limit whatever the header said.
    assert AccessAttempt.objects.count() == LIMIT
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {ATTACKER}


def test_a_client_through_the_proxy_cannot_prepend_addresses(production: str, rita: User) -> None:
    # What a proxy that appends (`$proxy_add_x_forwarded_for`) forwards: the client's own
    # entries first, then the address the proxy saw.
    codes = [
        login(f"user{i}", "guess", production, f"10.{i}.0.1, {ATTACKER}").status_code
        for i in range(LIMIT + 5)
    ]
    assert set(codes[LIMIT - 1 :]) == {429}
    assert login("rita", "right-password-1", production, "198.51.100.7").status_code == 302
    assert AccessAttempt.objects.filter(ip_address=ATTACKER).count() == LIMIT


def test_api_token_guesses_with_a_rotating_header_are_throttled(
    production: str, rita: User
) -> None:
    good = Token.objects.create(user=rita).key
    codes = []
    for i in range(60):
        client = APIClient(REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR=f"10.{i}.0.1", **HTTPS)
        client.credentials(HTTP_AUTHORIZATION=f"Token {i:040d}")
        codes.append(client.get(API).status_code)
    assert codes[: LIMIT - 1] == [401] * (LIMIT - 1)
    assert set(codes[LIMIT - 1 :]) == {429}, codes
    assert AccessAttempt.objects.count() == 1  # one row (address, user agent) counting them
    assert AccessAttempt.objects.get().failures_since_start == LIMIT
    other = APIClient(REMOTE_ADDR="198.51.100.7", **HTTPS)
    other.credentials(HTTP_AUTHORIZATION=f"Token {good}")
    assert other.get(API).status_code == 200


def test_rotating_user_agents_and_usernames_cannot_multiply_lockout_rows(
    production: str, rita: User
) -> None:
    for i in range(80):
        login(f"user{i}", "guess", ATTACKER, f"10.{i}.0.1", agent=f"agent-{i}")
    assert AccessAttempt.objects.count() == LIMIT, "a locked-out client writes no more rows"


CASE_IDS = {"login-rotating-forwarded-for", "token-rotating-forwarded-for"}
# login-rotating-forwarded-for: test_a_direct_client_rotating_the_header_is_throttled_at_the_limit
# token-rotating-forwarded-for: test_api_token_guesses_with_a_rotating_header_are_throttled


def _request(remote: str, forwarded: str | None = None) -> Any:
    meta: dict[str, str] = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **meta)


def test_the_client_address_is_the_connection_unless_a_trusted_proxy_forwards(
    settings: Any,
) -> None:
    settings.TRUSTED_PROXY_HOPS = 0
    settings.TRUSTED_PROXIES = ()
    assert client_address(_request("10.0.0.9", "1.2.3.4")) == "10.0.0.9", "no proxy configured"
    settings.TRUSTED_PROXIES = ("172.28.0.0/24", "10.1.0.5/32")
    assert client_address(_request("10.0.0.9", "1.2.3.4")) == "10.0.0.9", "a direct client"
    assert client_address(_request("172.28.0.10", "1.2.3.4")) == "1.2.3.4"
    # two trusted proxies in a row, then the client; entries left of it are the client's own
    chain = "6.6.6.6, 1.2.3.4, 10.1.0.5"
    assert client_address(_request("172.28.0.10", chain)) == "1.2.3.4"
    # a trusted proxy that sent no header, or garbage: its own address
    assert client_address(_request("172.28.0.10")) == "172.28.0.10"
    assert client_address(_request("172.28.0.10", "unknown")) == "172.28.0.10"
    # a dual-stack socket's view of an IPv4 peer is that peer
    assert client_address(_request("::ffff:172.28.0.10", "1.2.3.4")) == "1.2.3.4"
    assert client_address(_request("::ffff:10.0.0.9", "1.2.3.4")) == "10.0.0.9"


def test_a_count_of_hops_trusts_that_many_entries_from_the_right(settings: Any) -> None:
    settings.TRUSTED_PROXIES = ()
    settings.TRUSTED_PROXY_HOPS = 1
    assert client_address(_request("172.28.0.10", "6.6.6.6, 1.2.3.4")) == "1.2.3.4"
    assert client_address(_request("172.28.0.10")) == "172.28.0.10"
    settings.TRUSTED_PROXY_HOPS = 2
    assert client_address(_request("10.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.2")) == "1.2.3.4"
    assert client_address(_request("10.0.0.1", "1.2.3.4")) == "1.2.3.4"
