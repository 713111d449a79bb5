"""Guessable logins: the login form and the token API are throttled per user and per address."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]

LIMIT = 20  # LOGIN_FAILURE_LIMIT's default: the 21st quick wrong password is throttled
API = "/models/api/families/"


@pytest.fixture
def rita(db: Any) -> User:
    user = User.objects.create_user("rita", password="right-password-1")
    user.groups.set(Group.objects.filter(name="researcher"))
    return user


def attempt(client: Client, username: str, password: str, ip: str = "10.0.0.1") -> Any:
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_the_21st_quick_wrong_password_is_throttled_and_the_right_one_waits(rita: User) -> None:
    client = Client()
    for _ in range(LIMIT - 1):
        assert attempt(client, "rita", "guess").status_code == 200  # the form again, with error
    locked = attempt(client, "rita", "guess")  # the 20th failure locks
    assert locked.status_code == 429
    response = attempt(client, "rita", "right-password-1")
    assert response.status_code == 429, "a correct password during the cool-off is still refused"
    text = response.content.decode()
    assert "Too many failed sign-in attempts" in text and "0:15:00" in text
    assert "_auth_user_id" not in client.session
    # from another address the account stays locked (per user) ...
    assert attempt(Client(), "rita", "right-password-1", ip="10.9.9.9").status_code == 429
    # ... until the cool-off has passed
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    ok = attempt(Client(), "rita", "right-password-1", ip="10.9.9.9")
    assert ok.status_code == 302 and ok["Location"] == "/"


def test_one_address_guessing_many_usernames_is_throttled(rita: User) -> None:
    client = Client()
    for i in range(LIMIT):
        attempt(client, f"user{i}", "guess", ip="10.0.0.7")
    assert attempt(client, "rita", "right-password-1", ip="10.0.0.7").status_code == 429
    assert attempt(Client(), "rita", "right-password-1", ip="10.0.0.8").status_code == 302


def test_api_token_guessing_is_throttled_per_address(rita: User) -> None:
    good = Token.objects.create(user=rita).key
    client = APIClient(REMOTE_ADDR="10.1.1.1")
    for i in range(LIMIT - 1):
        client.credentials(HTTP_AUTHORIZATION=f"Token {i:040d}")
        assert client.get(API).status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {'9' * 40}")
    locking = client.get(API)  # the 20th wrong token locks the address
    assert locking.status_code == 429 and "Too many" in locking.json()["error"]["message"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {good}")
    refused = client.get(API)
    assert refused.status_code == 429
    assert "Too many failed sign-in attempts" in refused.json()["error"]["message"]
    other = APIClient(REMOTE_ADDR="10.1.1.2")
    other.credentials(HTTP_AUTHORIZATION=f"Token {good}")
    assert other.get(API).status_code == 200, "other addresses and the user are not locked"
    assert attempt(Client(), "rita", "right-password-1", ip="10.1.1.3").status_code == 302


CASE_IDS = {"api-token-guessing"}  # test_api_token_guessing_is_throttled_per_address


def test_logging_in_to_ones_own_account_does_not_reset_guesses_at_others(rita: User) -> None:
    mallory = User.objects.create_user("mallory", password="mallory-password-1")
    client = Client()
    for round_ in range(2):
        for _ in range(LIMIT // 2):
            attempt(client, "rita", "guess", ip="10.2.2.2")
        if round_ == 0:
            own = attempt(Client(), "mallory", "mallory-password-1", ip="10.2.2.2")
            assert own.status_code == 302
    assert mallory.is_active
    assert attempt(client, "rita", "right-password-1", ip="10.2.2.2").status_code == 429


def test_behind_the_proxy_each_forwarded_address_counts_alone(rita: User, settings: Any) -> None:
    settings.TRUST_X_FORWARDED_PROTO = True
    proxy = "172.18.0.5"
    settings.TRUSTED_PROXIES = (f"{proxy}/32",)
    for i in range(LIMIT):
        Client().post("/login/", {"username": f"user{i}", "password": "guess"}, REMOTE_ADDR=proxy,
                      HTTP_X_FORWARDED_FOR="203.0.113.9")  # fmt: skip
    locked = Client().post("/login/", {"username": "rita", "password": "right-password-1"},
                           REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="203.0.113.9")  # fmt: skip
    assert locked.status_code == 429
    other = Client().post("/login/", {"username": "rita", "password": "right-password-1"},
                          REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="198.51.100.7")  # fmt: skip
    assert other.status_code == 302, "another client behind the same proxy is not locked out"
