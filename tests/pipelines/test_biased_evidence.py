"""Declared data per role (spec validation), overlap per role, and the biased-evidence gate rule."""

from __future__ import annotations

import pytest

from pipelines.release.evidence import (
    EVIDENCE_GATE,
    apply_biased_evidence,
    biased_evidence_text,
    overlap_by_role,
    report_with_biased_evidence,
)
from pipelines.release.gates import Gate, verdict_of
from pipelines.spec import SpecError, build_spec, validate_spec
from pipelines.spec.declared import declared_data

A, B, C, D = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)
CAND, BASE = "subject-lift:1.2.0", "subject-lift:1.1.0"


def spec(**training: object) -> dict:
    return build_spec("torch_export", size=64, training=training)


@pytest.mark.parametrize(
    ("training", "path", "words"),
    [
        ({"tuned_image_sha256": [A, "xyz"]}, "training.tuned_image_sha256[1]", "'xyz'"),
        ({"selected_image_sha256": [A.upper()]}, "training.selected_image_sha256[0]", "lowercase"),
        ({"selected_image_sha256": [7]}, "training.selected_image_sha256[0]", "got 7"),
        ({"tuned_image_sha256": A}, "training.tuned_image_sha256", "must be a list"),
        ({"image_sha256": [A, "nope"]}, "training.image_sha256[1]", "sha256 of an image file"),
    ],
)
def test_a_bad_declared_digest_is_refused_naming_its_field(training, path, words):
    with pytest.raises(SpecError) as err:
        validate_spec(spec(**training))
    assert f"{path}: " in str(err.value) and words in str(err.value)


def test_many_bad_digests_are_named_a_few_then_counted():
    with pytest.raises(SpecError) as err:
        validate_spec(spec(selected_image_sha256=[str(i) for i in range(12)]))
    text = str(err.value)
    assert "training.selected_image_sha256[4]" in text
    assert "training.selected_image_sha256[5]" not in text
    assert "7 more entries are not sha256 digests" in text


def test_every_role_is_read_and_valid_specs_pass():
    doc = spec(image_sha256=[A], tuned_image_sha256=[B], selected_image_sha256=[B, C])
    validate_spec(doc)
    assert declared_data(doc) == {
        "trained": frozenset({A}),
        "tuned": frozenset({B}),
        "selected": frozenset({B, C}),
    }
    assert declared_data(None) == {r: frozenset() for r in ("trained", "tuned", "selected")}


def test_overlap_counts_each_role_by_item_image_digest():
    items = [("401", A), ("405", B), ("409", C), ("413", D), ("417", B)]
    doc = spec(image_sha256=[A], tuned_image_sha256=[B], selected_image_sha256=[B, C, "e" * 64])
    got = overlap_by_role(version=CAND, spec=doc, items=items)
    assert [(o.role, o.stems, o.total) for o in got] == [
        ("trained", ("401",), 5),
        ("tuned", ("405", "417"), 5),
        ("selected", ("405", "409", "417"), 5),
    ]
    assert got[2].as_dict() == {
        "role": "selected",
        "version": CAND,
        "items": 3,
        "of": 5,
        "text": "3 of 5 items were used to select subject-lift 1.2.0 (selected); numbers on "
        "this set favour it",
    }
    assert overlap_by_role(version=CAND, spec=spec(image_sha256=[D]), items=items[:3]) == []
    assert overlap_by_role(version=CAND, spec=None, items=items) == []


def test_the_sentence_says_how_many_items_and_which_role():
    assert biased_evidence_text({"role": "tuned", "version": BASE, "items": 1, "of": 30}) == (
        "1 of 30 items was used to tune subject-lift 1.1.0 (tuned); numbers on this set favour it"
    )
    assert biased_evidence_text({"role": "trained", "version": BASE, "items": 1}).startswith(
        "1 item was used to train subject-lift 1.1.0 (trained)"
    )


def gates() -> list[Gate]:
    return [
        Gate(name="IoU non-inferiority", kind="metric", status="pass", text="IoU +0.065"),
        Gate(name="MAE non-inferiority", kind="metric", status="fail", text="MAE +0.02"),
        Gate(name="latency budget", kind="latency", status="pass", text="p99 12 ms"),
        Gate(name="same post-processing", kind="evidence", status="pass", text="same"),
    ]


def entry(version: str, role: str = "selected", items: int = 14) -> dict:
    return {"role": role, "version": version, "items": items, "of": 30}


def test_a_quality_gate_on_items_that_favour_the_candidate_cannot_pass():
    out = apply_biased_evidence(gates(), [entry(CAND)], candidate=CAND, baseline=BASE)
    by_name = {g.name: g for g in out}
    iou = by_name["IoU non-inferiority"]
    assert iou.status == "insufficient"
    assert iou.text.startswith("biased evidence: 14 of 30 items were used to select ")
    assert iou.text.endswith("IoU +0.065")
    assert by_name["MAE non-inferiority"].status == "fail"  # favoured and still worse: stands
    assert by_name["latency budget"].status == "pass"  # not read from per-image quality
    assert by_name["same post-processing"].status == "pass"
    evidence = by_name[EVIDENCE_GATE]
    assert (evidence.kind, evidence.status) == ("evidence", "insufficient")
    assert "biased evidence" in evidence.text
    assert verdict_of(out) == "fail"


def test_a_failure_on_items_that_favour_the_baseline_is_not_evidence_either():
    out = apply_biased_evidence(gates(), [entry(BASE, "tuned")], candidate=CAND, baseline=BASE)
    by_name = {g.name: g for g in out}
    assert by_name["MAE non-inferiority"].status == "insufficient"
    assert by_name["IoU non-inferiority"].status == "insufficient"
    assert verdict_of(out) == "insufficient"


def test_no_overlap_leaves_the_gates_as_they_were():
    assert apply_biased_evidence(gates(), [], candidate=CAND, baseline=BASE) == gates()


def test_gates_of_another_set_in_a_suite_are_left_alone():
    other = Gate(name="IoU non-inferiority", kind="metric", status="pass", text="t")
    # A report over several sets tags each gate with the set it read.
    object.__setattr__(other, "dataset", "pascal-s-test:1234")
    out = apply_biased_evidence(
        [other], [entry(CAND)], candidate=CAND, baseline=BASE, dataset="pascal-s-demo:abcd"
    )
    assert out[0].status == "pass" and out[1].name == EVIDENCE_GATE


def test_the_report_payload_names_biased_evidence_and_its_verdict_follows():
    payload = {
        "candidate": CAND,
        "baseline": BASE,
        "verdict": "pass",
        "exit_code": 0,
        "gates": [gates()[0].as_dict()],
    }
    out = report_with_biased_evidence(payload, [entry(CAND)])
    assert out["biased_evidence"] == [entry(CAND)]
    assert (out["verdict"], out["exit_code"]) == ("insufficient", 4)
    assert [g["status"] for g in out["gates"]] == ["insufficient", "insufficient"]
    clean = report_with_biased_evidence(payload, [])
    assert clean["biased_evidence"] == [] and clean["verdict"] == "pass"
    assert payload["verdict"] == "pass"  # pure: the input is not changed


def test_in_a_suite_only_the_overlapping_sets_gates_are_ruled():
    from pipelines.release.evidence import report_with_biased_evidence

    gate = {"kind": "metric", "status": "pass", "text": "IoU ok", "name": "IoU non-inferiority"}
    payload = {
        "candidate": "f:2", "baseline": "f:1", "verdict": "pass", "exit_code": 0,
        "gates": [{**gate, "dataset": "val:1"}, {**gate, "dataset": "test:1"}],
    }  # fmt: skip
    entry = {"role": "selected", "version": "f:2", "items": 5, "of": 10, "dataset": "val:1"}
    out = report_with_biased_evidence(payload, [entry])
    by_set = {(g["name"], g["dataset"]): g["status"] for g in out["gates"]}
    assert by_set[("IoU non-inferiority", "val:1")] == "insufficient"
    assert by_set[("IoU non-inferiority", "test:1")] == "pass"
    assert by_set[("unbiased evidence", "val:1")] == "insufficient"
    assert out["verdict"] == "insufficient" and out["biased_evidence"] == [entry]
