"""/healthz, the System page, and what each role sees."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from evalsite.core.models import ServiceHeartbeat, WorkerHeartbeat

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]


def make_user(username: str, *roles: str, superuser: bool = False) -> User:
    user = User.objects.create_user(
        username, password="pw-for-tests", is_superuser=superuser, is_staff=superuser
    )
    user.groups.set(Group.objects.filter(name__in=roles))
    return user


def beat_worker(hostname: str, queues: list[str], age_s: float = 0) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname,
        defaults={
            "pid": 1,
            "queues": queues,
            "started_at": now,
            "last_seen": now - timedelta(seconds=age_s),
        },
    )


def test_groups_exist_from_the_data_migration():
    assert set(Group.objects.values_list("name", flat=True)) >= {
        "annotator",
        "researcher",
        "release_manager",
    }


def test_healthz_reports_database_broker_workers_and_beat(client):
    beat_worker("w1@a", ["default", "torch"])
    beat_worker("m@a", ["maintenance"])
    beat_worker("stale@b", ["onnx"], age_s=3600)
    ServiceHeartbeat.objects.create(name="beat", last_seen=timezone.now())
    body = client.get("/healthz").json()
    assert body["database"]["ok"] and body["broker"]["ok"]
    assert body["queues"]["default"]["workers"] == ["w1@a"]
    assert body["queues"]["onnx"]["live"] == 0, "a stale heartbeat is not a live worker"
    assert body["queues"]["coreml"]["note"] == "no macOS worker connected"
    assert body["beat"]["ok"]
    assert body["status"] == "degraded" and body["degraded"] == ["queue:onnx"]


def test_healthz_is_ok_when_everything_answers_and_coreml_is_absent(client):
    beat_worker("w1@a", ["default", "torch", "onnx"])
    beat_worker("m@a", ["maintenance"])
    ServiceHeartbeat.objects.create(name="beat", last_seen=timezone.now())
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_healthz_is_503_when_the_database_does_not_answer(client):
    down = {"ok": False, "vendor": "sqlite", "error": "OperationalError: unable to open"}
    with mock.patch("evalsite.core.selectors.database_status", return_value=down):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"]["error"].startswith("OperationalError")


def test_healthz_stays_200_when_the_broker_is_down(client):
    with mock.patch(
        "evalsite.core.selectors.broker_status",
        return_value={"ok": False, "url": "redis://x", "error": "ConnectionError"},
    ):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert "broker" in response.json()["degraded"]


def test_login_page_is_the_front_door(client):
    response = client.get("/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/login/")
    assert b"Log in" in response.content


def test_annotators_land_on_their_next_task_and_see_only_rating(client):
    client.force_login(make_user("ann", "annotator"))
    response = client.get("/", follow=True)
    assert response.redirect_chain[-1][0] == "/rate/"
    html = response.content.decode()
    assert 'href="/rate/"' in html
    for hidden in ("/sets/", "/models/", "/runs/", "/system/", "/admin/"):
        assert f'href="{hidden}"' not in html
    assert client.get("/sets/").status_code == 403
    assert client.get("/models/").status_code == 403


def test_researchers_see_research_pages_but_not_system(client):
    client.force_login(make_user("res", "researcher"))
    html = client.get("/").content.decode()
    assert 'href="/sets/"' in html and 'href="/models/"' in html and 'href="/runs/"' in html
    assert 'href="/system/"' not in html and 'href="/rate/"' not in html
    assert client.get("/system/").status_code == 403
    assert client.get("/rate/").status_code == 403


def test_admin_sees_the_system_page_with_missing_macos_worker_note(client):
    client.force_login(make_user("root", superuser=True))
    beat_worker("w1@a", ["default"])
    html = client.get("/system/").content.decode()
    assert "no macOS worker connected" in html and "w1@a" in html
    assert client.get("/admin/").status_code == 200


def test_anonymous_users_are_sent_to_login():
    from django.test import Client

    response = Client().get("/system/")
    assert response.status_code == 302 and response.url.startswith("/login/")


def test_healthz_shows_each_workers_storage_and_cache_and_degrades_when_one_cannot_reach_it(
    client,
):
    ok = {"backend": "s3", "reachable": True, "cache_bytes": 10, "cache_files": 1,
          "cache_limit_bytes": 100}  # fmt: skip
    beat_worker("w1@a", ["default", "torch", "onnx", "maintenance"])
    beat_worker("mac@b", ["coreml"])
    WorkerHeartbeat.objects.filter(hostname="w1@a").update(storage=ok)
    WorkerHeartbeat.objects.filter(hostname="mac@b").update(
        storage={**ok, "reachable": False, "error": "EndpointConnectionError: no route"}
    )
    ServiceHeartbeat.objects.create(name="beat", last_seen=timezone.now())
    body = client.get("/healthz").json()
    by_host = {w["hostname"]: w for w in body["workers"]}
    assert by_host["w1@a"]["storage"] == ok
    assert by_host["w1@a"]["queues"] == ["default", "torch", "onnx", "maintenance"]
    assert by_host["mac@b"]["storage"]["reachable"] is False
    assert body["degraded"] == ["storage:mac@b"]
    client.force_login(make_user("root", superuser=True))
    html = client.get("/system/").content.decode().replace("\xa0", " ")
    assert "s3: reachable" in html and "10 bytes of 100 bytes (1 files)" in html
    assert "s3: unreachable (EndpointConnectionError: no route)" in html
