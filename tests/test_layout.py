"""Project shape: pure pipelines/, a compose file and Dockerfile that describe a working deploy."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.no_services


def test_every_pipelines_module_imports_without_django_or_celery():
    script = (
        "import importlib, pkgutil, sys, pipelines\n"
        "names = [m.name for m in pkgutil.walk_packages(pipelines.__path__, 'pipelines.')\n"
        "         if not m.name.endswith('__main__')]\n"
        "for name in names: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'django', 'celery', 'kombu'})\n"
        "print(len(names)); assert not bad, bad\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) >= 5


def test_no_source_file_in_pipelines_mentions_django_or_celery_imports():
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "pipelines").rglob("*.py")
        if re.search(r"^\s*(from|import)\s+(django|celery)\b", p.read_text(), re.M)
    ]
    assert offenders == []


def load_compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_describes_web_worker_beat_postgres_redis():
    services = load_compose()["services"]
    assert set(services) >= {"web", "worker", "beat", "postgres", "redis"}
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker, "worker must scale"
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://")
        assert "@postgres:5432/" in env["DATABASE_URL"]
        assert env["CELERY_BROKER_URL"] == "redis://redis:6379/0"
        assert env["MEDIA_ROOT"] == "/data/media"
        assert "media:/data/media" in services[name]["volumes"]
        assert set(services[name]["depends_on"]) == {"postgres", "redis"}
    db_name = services["postgres"]["environment"]["POSTGRES_DB"]
    assert services["web"]["environment"]["DATABASE_URL"].endswith(f"/{db_name}")
    assert {"media", "pgdata"} <= set(load_compose()["volumes"])


def test_dockerfile_copies_only_existing_paths():
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY"):
            for src in shlex.split(line)[1:-1]:
                assert (ROOT / src).exists(), f"Dockerfile copies missing {src}"


def _commands() -> list[list[str]]:
    services = load_compose()["services"]
    cmds = [services[n]["command"] for n in ("web", "worker", "beat")]
    docker_cmd = re.search(r"^CMD (\[.*\])", (ROOT / "Dockerfile").read_text(), re.M)
    assert docker_cmd
    cmds.append(yaml.safe_load(docker_cmd.group(1)))
    out = []
    for cmd in cmds:
        if cmd[:2] == ["sh", "-c"]:
            out += [shlex.split(part) for part in cmd[2].split("&&")]
        else:
            out.append(cmd)
    return out


def test_every_command_in_compose_and_dockerfile_resolves():
    from django.core.management import get_commands

    known = get_commands()
    for cmd in _commands():
        if cmd[:2] == ["python", "manage.py"]:
            assert cmd[2] in known, f"unknown manage.py command {cmd[2]}"
        elif cmd[0] == "celery":
            app_path = cmd[cmd.index("-A") + 1]
            module = __import__(app_path, fromlist=["celery_app"])
            assert module.celery_app.main == "evalsite"
            queues = cmd[cmd.index("-Q") + 1].split(",") if "-Q" in cmd else []
            from django.conf import settings

            assert set(queues) <= set(settings.WORKER_QUEUES)
        elif cmd[0] == "gunicorn":
            wsgi = __import__(cmd[1], fromlist=["application"])
            assert callable(wsgi.application)
        else:
            raise AssertionError(f"unexpected command {cmd}")


def test_only_the_reverse_proxy_is_published_and_the_app_trusts_only_its_address():
    """The client address behind the proxy comes from X-Forwarded-For only when the connection
    is the proxy's (TRUSTED_PROXIES): so the app must not be reachable any other way, and the
    proxy must write the header itself."""
    import ipaddress

    compose = load_compose()
    services = compose["services"]
    published = sorted(name for name, svc in services.items() if svc.get("ports"))
    assert published == ["proxy"], f"only the reverse proxy may publish a port, not {published}"
    proxy_ip = services["proxy"]["networks"]["edge"]["ipv4_address"]
    trusted = [ipaddress.ip_network(p.strip()) for p in
               compose["x-app-env"]["TRUSTED_PROXIES"].split(",")]  # fmt: skip
    assert any(ipaddress.ip_address(proxy_ip) in net for net in trusted)
    subnet = ipaddress.ip_network(compose["networks"]["edge"]["ipam"]["config"][0]["subnet"])
    assert all(net.subnet_of(subnet) for net in trusted)  # type: ignore[arg-type]
    assert "edge" in services["web"]["networks"]
    template = services["proxy"]["volumes"][0].split(":")[0]
    conf = (ROOT / template).read_text()
    assert "proxy_pass http://app;" in conf and "server web:8000;" in conf
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf, "the proxy writes the header"
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in conf
