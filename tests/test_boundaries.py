"""What crosses between apps is typed.

An app reads another app's data through functions that app exports, and those functions take and
return typed values (models, dataclasses from `pipelines/payloads/`, plain scalars), never
`dict[str, Any]` or `Any`: a producer and a consumer cannot drift apart unseen. Two checks, both
on the source (`ast`), so they also see imports inside functions:

* every name an app imports from another app (`from <app>.x import f`, or `from <app> import x`
  then `x.f`) is resolved to its `def`/`class` there; its annotations must not mention `Any`
  (variadic `*args`/`**kwargs` that pass through to a framework are left alone);
* no module indexes another app's stored JSON (`row.payload["key"]`, `(row.payload or {}).get`)
  by the names of the JSON fields that app's models declare and its own models do not. This one
  works on names, not types, so it leaves alone what is plainly not another app's row: a job
  handler's `chunk`/`job` (the kind's own payload, which core only carries), the request, and
  an object's own attributes (`self.…`). A field name both apps declare is not checked.

The `test_the_checker_finds_*` tests plant violations in a few lines of source and show the
checks naming them.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.no_services

#: Documents the job primitive carries for the app that created the job: a kind's handlers read
#: their own chunk and job payloads (written by the same app through `job_create`), not core's.
CARRIED = {"chunk", "job"}
#: Names that hold the request, not a stored row (`request.data` is DRF's parsed body).
NOT_ROWS = {"request", "serializer", "form", "cleaned"}


def apps() -> list[str]:
    """The apps, in the layers order of the import check (pyproject.toml), project modules,
    `evalsite.env` and `pipelines` (not an app: a library every app may call) left out."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [layers] = [c["layers"] for c in config["tool"]["importlinter"]["contracts"]
                if c["id"] == "layers"]  # fmt: skip
    return [layer for layer in layers if ":" not in layer
            and layer not in {"pipelines", "evalsite.env"}]  # fmt: skip


def project_sources() -> dict[str, str]:
    """Module name -> source text of every module of every app (migrations left out)."""
    out = {}
    for app in apps():
        folder = ROOT.joinpath(*app.split("."))
        for path in sorted(folder.rglob("*.py")):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path.read_text()
    return out


def app_of(module: str, app_names: list[str]) -> str | None:
    for app in sorted(app_names, key=len, reverse=True):
        if module == app or module.startswith(app + "."):
            return app
    return None


class Resolver:
    """Top-level definitions of the given modules, following re-exports."""

    def __init__(self, sources: Mapping[str, str]) -> None:
        self.sources = sources
        self.trees = {name: ast.parse(text) for name, text in sources.items()}

    def resolve(self, module: str, name: str) -> ast.AST | None:
        for _ in range(8):  # re-export chains are short; a cycle ends here
            tree = self.trees.get(module)
            if tree is None:
                return None
            found: ast.AST | tuple[str, str] | None = None
            for node in tree.body:
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    if node.name == name:
                        found = node
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    for alias in node.names:
                        if (alias.asname or alias.name) == name:
                            found = (node.module, alias.name)
            if not isinstance(found, tuple):
                return found
            module, name = found
        return None


def _mentions_any(annotation: ast.expr | None) -> bool:
    if annotation is None:
        return False
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        annotation = ast.parse(annotation.value, mode="eval").body  # a quoted annotation
    return any(
        (isinstance(n, ast.Name) and n.id == "Any")
        or (isinstance(n, ast.Attribute) and n.attr == "Any")
        for n in ast.walk(annotation)
    )


def loose_annotations(node: ast.AST) -> list[str]:
    """`param: annotation` and `-> annotation` of a def (or of a class's constructor, public
    methods and annotated fields) that mention `Any`."""
    out = []
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        a = node.args
        for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs]:
            if _mentions_any(arg.annotation):
                out.append(f"{arg.arg}: {ast.unparse(arg.annotation)}")  # type: ignore[arg-type]
        if _mentions_any(node.returns):
            out.append(f"-> {ast.unparse(node.returns)}")  # type: ignore[arg-type]
    elif isinstance(node, ast.ClassDef):
        for item in node.body:
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and (
                not item.name.startswith("_") or item.name in {"__init__", "__call__"}
            ):
                out += [f"{item.name}({loose})" for loose in loose_annotations(item)]
            elif (
                isinstance(item, ast.AnnAssign)
                and isinstance(item.target, ast.Name)
                and not item.target.id.startswith("_")
                and _mentions_any(item.annotation)
            ):
                out.append(f"{item.target.id}: {ast.unparse(item.annotation)}")
    return out


def _imported_names(tree: ast.Module, modules: Mapping[str, str]) -> Iterator[tuple[int, str, str]]:
    """(line, module, name) for every `from m import name` and every `alias.name` where alias is
    an imported module, in any scope."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in modules:
                    aliases[alias.asname or alias.name] = full
                else:
                    yield node.lineno, node.module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
        ):
            yield node.lineno, aliases[node.value.id], node.attr


def untyped_crossings(sources: Mapping[str, str], app_names: list[str]) -> list[str]:
    """`module:line imported.name: what is loose` for every name an app imports from another
    app whose signature mentions Any."""
    resolver = Resolver(sources)
    found = []
    for module, tree in resolver.trees.items():
        own = app_of(module, app_names)
        for line, source, name in _imported_names(tree, sources):
            other = app_of(source, app_names)
            if own is None or other is None or other == own:
                continue
            target = resolver.resolve(source, name)
            loose = loose_annotations(target) if target is not None else []
            if loose:
                found.append(f"{module}:{line} {source}.{name}: {', '.join(loose)}")
    return sorted(set(found))


def json_fields(sources: Mapping[str, str], app_names: list[str]) -> dict[str, set[str]]:
    """Per app, the names of the JSONFields its models declare (`name = models.JSONField(...)`)."""
    out: dict[str, set[str]] = {app: set() for app in app_names}
    for module, text in sources.items():
        app = app_of(module, app_names)
        if app is None or module != f"{app}.models":
            continue
        for node in ast.walk(ast.parse(text)):
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Attribute)
                and node.value.func.attr == "JSONField"
            ):
                out[app] |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return out


def _json_read(node: ast.AST) -> ast.Attribute | None:
    """The `x.field` of `x.field[...]`, `x.field.get(...)` or `(x.field or {}).get(...)`."""
    if isinstance(node, ast.Subscript):
        inner = node.value
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
    ):
        inner = node.func.value
    else:
        return None
    if isinstance(inner, ast.BoolOp) and isinstance(inner.op, ast.Or):
        inner = inner.values[0]
    return inner if isinstance(inner, ast.Attribute) else None


def foreign_json_reads(sources: Mapping[str, str], app_names: list[str]) -> list[str]:
    """`module:line expression` where a module indexes a JSON field only another app's models
    declare."""
    fields = json_fields(sources, app_names)
    found = []
    for module, text in sources.items():
        own = app_of(module, app_names)
        if own is None:
            continue
        foreign = {name for app, names in fields.items() if app != own for name in names}
        for node in ast.walk(ast.parse(text)):
            read = _json_read(node)
            if read is None or read.attr not in foreign - fields[own]:
                continue
            base = ast.unparse(read.value)
            if base in NOT_ROWS | CARRIED or base.startswith("self."):  # not another app's row
                continue
            found.append(f"{module}:{node.lineno} {ast.unparse(node)[:80]}")
    return sorted(found)


def test_no_name_an_app_imports_from_another_takes_or_returns_any():
    assert untyped_crossings(project_sources(), apps()) == []


def test_no_app_indexes_another_apps_stored_json():
    assert foreign_json_reads(project_sources(), apps()) == []


PLANTED = {
    "low": "",
    "low.models": "from django.db import models\n\nclass Doc(models.Model):\n"
    "    payload = models.JSONField(default=dict)\n",
    "low.selectors": "from typing import Any\n\n"
    "def doc_payload(doc) -> dict[str, Any]:\n    return doc.payload\n\n"
    "def doc_keys(doc, *args: Any, **kwargs: Any) -> list[str]:\n    return list(doc.payload)\n",
    "low.jobs": "from typing import Any\n\n"
    "class Handle:\n    extra: Any\n\n    def result(self, key: 'Any') -> int:\n        return 1\n",
    "low.api": "from low.selectors import doc_payload\n",  # a re-export
    "high": "",
    "high.views": "from low import jobs\n\n"
    "def page(doc):\n    from low.api import doc_payload\n    from low.selectors import doc_keys\n"
    "    return doc_payload(doc), doc.payload['n'], (doc.payload or {}).get('m'), jobs.Handle\n\n"
    "def handler(chunk):\n    return chunk.payload['n']\n",
}


def test_the_checker_finds_a_planted_untyped_crossing_in_any_scope_and_through_re_exports():
    found = untyped_crossings(PLANTED, ["low", "high"])

    assert found == [
        "high.views:4 low.api.doc_payload: -> dict[str, Any]",
        "high.views:6 low.jobs.Handle: extra: Any, result(key: 'Any')",
    ]  # doc_keys is fine: only its pass-through *args/**kwargs mention Any


def test_the_checker_finds_a_planted_read_of_another_apps_json():
    found = foreign_json_reads(PLANTED, ["low", "high"])

    assert found == [
        "high.views:6 (doc.payload or {}).get('m')",
        "high.views:6 doc.payload['n']",
    ]  # low reading its own payload is not a crossing, nor a job handler its chunk's


def test_the_job_module_does_not_import_the_reaper_which_uses_only_its_public_names():
    """The reaper sits on top of the job primitive: jobs.py may change its internals (and be
    imported alone) without the reaper, which calls only its public functions."""
    jobs = ast.parse((ROOT / "evalsite/core/jobs.py").read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(jobs)
        if isinstance(node, ast.ImportFrom | ast.Import)
        for alias in node.names
    } | {
        f"{node.module}.{alias.name}"
        for node in ast.walk(jobs)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert not any("reaper" in (name or "") for name in imported)
    reaper = ast.parse((ROOT / "evalsite/core/reaper.py").read_text())
    used = {
        node.attr
        for node in ast.walk(reaper)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "jobs"
    }
    assert used and not {name for name in used if name.startswith("_")}
