"""Project shape: pure pipelines/, app layers that `make lint` enforces, modules that keep to each
other's public names, a compose file and Dockerfile that describe a working deploy."""

from __future__ import annotations

import ast
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
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


def _root_packages() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["importlinter"]["root_packages"]


def _lint_imports_command() -> list[str]:
    """The import check exactly as `make lint` runs it (its line of the Makefile's lint recipe),
    with this interpreter's virtual environment."""
    recipe = re.search(r"^lint:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert recipe, "the Makefile has no lint target"
    [line] = [cmd.strip() for cmd in recipe.group(1).splitlines() if "lint-imports" in cmd]
    return shlex.split(line.replace("$(VENV)/bin", str(Path(sys.executable).parent)))


def _not_python(folder: str, names: list[str]) -> list[str]:
    return [
        n
        for n in names
        if n == "__pycache__" or not (n.endswith(".py") or Path(folder, n).is_dir())
    ]


@pytest.fixture
def lint_copy(tmp_path: Path) -> Path:
    """The layered packages' Python files and the check's configuration, in a scratch folder."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    for package in _root_packages():
        shutil.copytree(ROOT / package, tmp_path / package, ignore=_not_python)
    return tmp_path


def _lint_imports(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _lint_imports_command(), cwd=folder, capture_output=True, text=True, timeout=300
    )


def test_the_import_check_passes_on_the_tree_as_it_is(lint_copy: Path):
    result = _lint_imports(lint_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


#: (module file, what is appended to it, the lower and upper layer, the module imported)
UPWARD_IMPORTS = [
    # module level, from the bottom layer to an app
    ("pipelines/__init__.py", "import ratings.models\n", "pipelines", "ratings", "ratings.models"),
    # inside a function, between neighbouring apps (core asks releases for a page)
    (
        "evalsite/core/__init__.py",
        "def home_page():\n    from evalsite.releases.views import leaderboard_page\n\n"
        "    return leaderboard_page\n",
        "evalsite.core",
        "evalsite.releases",
        "evalsite.releases.views",
    ),
    # core reaching the project's Celery app, whose module imports core
    (
        "evalsite/core/__init__.py",
        "from evalsite.celery import app\n",
        "evalsite.core",
        "evalsite.celery",
        "evalsite.celery",
    ),
    # evals calling fairness at module level
    (
        "evalsite/evals/__init__.py",
        "from evalsite.fairness import services\n",
        "evalsite.evals",
        "evalsite.fairness",
        "evalsite.fairness.services",
    ),
]


@pytest.mark.parametrize(("path", "code", "lower", "upper", "imported"), UPWARD_IMPORTS)
def test_the_import_check_fails_on_an_upward_import_and_names_it(
    lint_copy: Path, path: str, code: str, lower: str, upper: str, imported: str
):
    module = lint_copy / path
    module.write_text(module.read_text() + code)

    result = _lint_imports(lint_copy)

    assert result.returncode != 0
    assert f"{lower} is not allowed to import {upper}" in result.stdout, result.stdout
    importer = path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    assert f"{importer} -> {imported}" in result.stdout, result.stdout


def _private_uses(path: Path, packages: set[str]) -> list[str]:
    """`from x import _name` and `module._name` where x or module is one of the project's."""
    tree = ast.parse(path.read_text())
    modules: dict[str, str] = {}  # local name -> project module it is bound to
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and alias.name.split(".")[0] in packages:
                    modules[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] not in packages:
                continue
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                target = ROOT.joinpath(*full.split("."))
                if target.with_suffix(".py").exists() or (target / "__init__.py").exists():
                    modules[alias.asname or alias.name] = full
                elif alias.name.startswith("_"):
                    found.append(f"{node.lineno}: from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append(f"{node.lineno}: {modules[node.value.id]}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names():
    """A leading underscore marks what its module may change without telling any other (the
    reaper finishes and fails jobs through the job module's public functions)."""
    packages = set(_root_packages())
    offenders = [
        f"{path.relative_to(ROOT)}:{use}"
        for package in sorted(packages)
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
        for use in _private_uses(path, packages)
    ]
    assert offenders == []


def load_compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_describes_web_worker_beat_postgres_redis_and_object_storage():
    services = load_compose()["services"]
    assert set(services) >= {"web", "worker", "beat", "postgres", "redis", "minio"}
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker, "worker must scale"
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://")
        assert "@postgres:5432/" in env["DATABASE_URL"]
        assert env["CELERY_BROKER_URL"] == "redis://redis:6379/0"
        # Stored files are in the bucket: no service shares a media folder with another.
        assert env["STORAGE_URL"].startswith("s3://")
        assert env["S3_ENDPOINT_URL"] == "http://minio:9000"
        assert "MEDIA_ROOT" not in env
        assert not any("media" in v for v in services[name].get("volumes", []))
        assert set(services[name]["depends_on"]) == {"postgres", "redis", "minio-bucket"}
    db_name = services["postgres"]["environment"]["POSTGRES_DB"]
    assert services["web"]["environment"]["DATABASE_URL"].endswith(f"/{db_name}")
    assert {"objects", "pgdata"} <= set(load_compose()["volumes"])
    assert "media" not in load_compose()["volumes"]
    for name in ("minio", "minio-bucket"):  # pinned to a release, never a moving tag
        assert re.fullmatch(r"minio/\w+:RELEASE\.[\dT:-]+Z", services[name]["image"])


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
