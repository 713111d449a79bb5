"""Every acceptance case through the registration service with inline validation."""

from __future__ import annotations

import pytest

from models import selectors, services
from models.errors import RegistryError, VersionNotFound
from models.models import ModelVersion, VersionStatus
from tests.registry.tiny_models import spec_for

pytestmark = [pytest.mark.django_db, pytest.mark.no_services]

CASES = [
    # (fixture name, spec format, status, words the reason must contain)
    ("pt2", "torch_export", "ready", ""),
    ("torchscript", "torchscript", "ready", ""),
    ("onnx", "onnx", "ready", ""),
    ("pickle", "torch_export", "rejected", "pickled checkpoint"),
    ("wrong_shape", "torch_export", "rejected", "alpha output has shape (1, 1, 32, 32)"),
    ("nan", "torch_export", "rejected", "alpha output contains NaN"),
    ("hog", "torch_export", "rejected", "out of memory"),
    ("random", "torch_export", "rejected", "not a recognised model file"),
    ("traversal", "torch_export", "rejected", "escapes the archive"),
]


def register(path, spec, version="1.0.0", **kwargs):
    return services.model_version_register(
        family="subject-lift",
        version=version,
        file=path,
        spec=spec,
        original_filename=path.name,
        validate="inline",
        **kwargs,
    )


@pytest.mark.parametrize(("case", "fmt", "status", "words"), CASES, ids=[c[0] for c in CASES])
def test_each_upload_ends_in_the_right_status_with_a_specific_reason(
    tiny, case, fmt, status, words
):
    result = register(tiny[case], spec_for(fmt))
    row = ModelVersion.objects.get(pk=result.version.pk)
    assert row.status == status, row.rejection_reason
    assert words in row.rejection_reason
    if status == "ready":
        assert row.validation_report["latency_ms"] > 0 and row.validation_report["load_ms"] >= 0
        assert row.format == fmt and row.file.name.startswith("models/subject-lift/1.0.0/")
        assert len(row.sha256) == 64 and row.size == tiny[case].stat().st_size


def test_a_pickle_is_refused_at_the_door_with_the_accepted_formats_and_nothing_is_stored(tiny):
    row = register(tiny["pickle"], spec_for("torch_export")).version
    assert row.rejection_reason.startswith("Refused at upload: checkpoint.pt: this is a pickled")
    assert "Accepted formats" in row.rejection_reason
    assert "torch.export.save" in row.rejection_reason
    assert not row.file and row.validation_job is None


def test_the_model_is_loaded_only_in_the_sandbox_under_the_configured_memory_limit(tiny):
    row = register(tiny["hog"], spec_for("torch_export")).version
    assert "more than the 3072 MB limit" in row.rejection_reason


def test_a_spec_whose_format_disagrees_with_the_content_is_rejected(tiny):
    row = register(tiny["onnx"], spec_for("torch_export")).version
    assert row.status == VersionStatus.REJECTED
    assert "spec says format 'torch_export' but the file is 'onnx'" in row.rejection_reason


def test_an_invalid_spec_is_rejected_naming_the_field(tiny):
    spec = spec_for("torch_export")
    spec["input"]["size"] = [8, 8]
    row = register(tiny["pt2"], spec).version
    assert row.status == VersionStatus.REJECTED
    assert "Invalid model spec: input.size[0]" in row.rejection_reason


def test_same_file_again_is_unchanged_and_another_file_under_the_version_is_refused(tiny):
    first = register(tiny["torchscript"], spec_for("torchscript"))
    again = register(tiny["torchscript"], spec_for("torchscript"))
    assert first.created and not again.created and again.version.pk == first.version.pk
    with pytest.raises(RegistryError, match="already exists with a different file"):
        register(tiny["onnx"], spec_for("onnx"))


def test_a_rejected_version_string_can_be_registered_again(tiny):
    rejected = register(tiny["random"], spec_for("torchscript")).version
    fixed = register(tiny["torchscript"], spec_for("torchscript")).version
    assert fixed.status == VersionStatus.READY
    assert not ModelVersion.objects.filter(pk=rejected.pk).exists()


@pytest.mark.parametrize("version", ["v1", "production", "", "1/2"])
def test_versions_must_start_with_a_digit(tiny, version):
    with pytest.raises(RegistryError, match="Invalid version"):
        register(tiny["torchscript"], spec_for("torchscript"), version=version)


def test_an_unknown_parent_is_refused_and_a_known_one_records_lineage(tiny):
    with pytest.raises(RegistryError, match=r"Parent version subject-lift:0\.9\.0 does not exist"):
        register(tiny["torchscript"], spec_for("torchscript"), parent="0.9.0")
    parent = register(tiny["torchscript"], spec_for("torchscript"), version="0.9.0").version
    child = register(tiny["onnx"], spec_for("onnx"), version="0.9.1", parent="0.9.0").version
    assert child.parent == parent and selectors.version_lineage(child) == [parent]


def test_the_builtin_baseline_registers_without_a_file():
    from pipelines.runners.builtin import builtin_spec

    row = services.model_version_register(
        family="subject-lift",
        version="0.0.1",
        file=None,
        spec=builtin_spec("saliency-grabcut"),
        validate="inline",
    ).version
    assert (row.status, row.format, row.sha256) == ("ready", "builtin", "")
    bad = services.model_version_register(
        family="subject-lift",
        version="0.0.2",
        file=None,
        spec={**builtin_spec("saliency-grabcut"), "builtin": "magic"},
        validate="inline",
    ).version
    assert bad.status == "rejected" and "Unknown builtin runner 'magic'" in bad.rejection_reason


def test_the_card_is_read_from_the_file_the_sidecar_names(tmp_path):
    (tmp_path / "m.card.md").write_text("# Card\ntrained on 400 images")
    spec = {"training": {"card": "m.card.md"}}
    assert services.card_for_spec(spec, tmp_path / "m.pt2.spec.json").startswith("# Card")
    assert services.card_for_spec({"training": {"card": "inline text"}}, None) == "inline text"


def test_resolver_understands_versions_and_aliases_with_clear_errors(tiny):
    row = register(tiny["torchscript"], spec_for("torchscript")).version
    services.alias_move(family=row.family, name="candidate", version=row, user=None, reason="t")
    assert selectors.model_version_resolve("subject-lift:1.0.0") == row
    assert selectors.model_version_resolve("subject-lift:candidate") == row
    for ref, words in [
        ("subject-lift", "not a model reference"),
        ("nope:1.0.0", "No model family 'nope'"),
        ("subject-lift:2.0.0", "no version '2.0.0' (versions: 1.0.0)"),
        ("subject-lift:production", "no alias 'production' (aliases: candidate)"),
    ]:
        with pytest.raises(VersionNotFound, match=words.replace("(", r"\(").replace(")", r"\)")):
            selectors.model_version_resolve(ref)


def test_resolver_can_require_a_ready_version(tiny):
    register(tiny["nan"], spec_for("torch_export"))
    with pytest.raises(VersionNotFound, match="is rejected, not ready: alpha output contains NaN"):
        selectors.model_version_resolve("subject-lift:1.0.0", require_ready=True)


def test_declared_data_is_read_per_role_from_the_stored_spec(tiny):
    seen, tuned = "a" * 64, "b" * 64
    spec = spec_for(
        "torchscript",
        training={"image_sha256": [seen], "tuned_image_sha256": [tuned, seen]},
    )
    row = register(tiny["torchscript"], spec).version
    assert row.status == "ready"
    assert row.declared_data == {
        "trained": frozenset({seen}),
        "tuned": frozenset({tuned, seen}),
        "selected": frozenset(),
    }
