"""`pipelines.imports`: reading predictions made elsewhere and device latency CSVs (pure)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pipelines.imports import (
    LatencyError,
    PredictionError,
    imported_postresult,
    latency_csv_from_report,
    main,
    parse_latency_csv,
    read_prediction,
)
from pipelines.postprocess.instances import separate_instances

pytestmark = pytest.mark.no_services

RNG = np.random.default_rng(7)


def test_eight_bit_grey_is_read_as_is_without_a_note(tmp_path):
    alpha = RNG.integers(0, 256, (13, 17), dtype=np.uint8)
    Image.fromarray(alpha).save(tmp_path / "a.png")
    p = read_prediction(tmp_path / "a.png")
    assert p.note == "" and np.array_equal(p.alpha, alpha)


def test_sixteen_bit_is_scaled_by_257_with_rounding(tmp_path):
    wide = np.array([[0, 128, 129, 32896, 65535, 65407]], dtype=np.uint16)
    Image.fromarray(wide).save(tmp_path / "w.png")
    p = read_prediction(tmp_path / "w.png")
    assert p.alpha.tolist() == [[0, 0, 1, 128, 255, 255]]  # round(v / 257)
    assert np.array_equal(p.alpha, np.round(wide / 257).astype(np.uint8))
    assert "16-bit PNG, scaled to 8 bit" in p.note


def test_palette_with_transparency_gives_its_alpha(tmp_path):
    im = Image.new("P", (4, 2))
    im.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    im.putdata([0, 1, 0, 1, 1, 1, 0, 0])
    im.info["transparency"] = 0  # palette index 0 transparent
    im.save(tmp_path / "p.png", transparency=0)
    p = read_prediction(tmp_path / "p.png")
    assert p.alpha.tolist() == [[0, 255, 0, 255], [255, 255, 0, 0]]
    assert "read its alpha channel" in p.note


def test_non_png_and_corrupt_files_name_the_file(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "x.png", format="BMP")
    with pytest.raises(PredictionError, match=r"x\.png: not a PNG \(found BMP data\)"):
        read_prediction(tmp_path / "x.png")
    (tmp_path / "y.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(PredictionError, match=r"y\.png: cannot read"):
        read_prediction(tmp_path / "y.png")


def test_latency_csv_accepts_stems_or_file_names_and_optional_stages():
    rows = parse_latency_csv(
        "\ufeffimage,ms,model_ms\nа.png,3.5,3\nb,4,2.5\n", stems={"а", "b"}
    )  # a BOM from Excel and a non-ASCII stem
    assert rows == {"а": {"total": 3.5, "model": 3.0}, "b": {"total": 4.0, "model": 2.5}}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("image,ms\na,1\na,2\nb,1\n", "row 3: a appears twice"),
        ("image,ms\na,1\n", "no row for b"),
        ("image,ms\na,1\nb,inf\n", "row 3 ms: 'inf' is not a finite number"),
        ("image,ms\na,1\nb,1e308\n", "row 3 ms: '1e308' ms is more than one hour per image"),
        ("image,ms,model_ms\na,1,-2\nb,1,1\n", "row 2 model_ms: '-2' is negative"),
        ("image;ms\na;1\n", "needs the columns image,ms"),
    ],
)
def test_latency_csv_problems_name_the_row_and_column(text, fragment):
    with pytest.raises(LatencyError) as caught:
        parse_latency_csv(text, stems={"a", "b"}, label="lat.csv")
    assert fragment in str(caught.value) and "lat.csv" in str(caught.value)


def test_imported_postresult_is_the_alpha_as_given_with_the_worker_instances():
    alpha = np.zeros((40, 60), np.uint8)
    alpha[5:15, 5:15] = 255
    alpha[20:35, 30:55] = 200
    post = imported_postresult(alpha, min_instance_area=0.002)
    assert post.alpha_png is post.ungated_png and np.array_equal(post.alpha_png, alpha)
    assert not post.gated and post.confidence is None
    empty = imported_postresult(np.zeros((8, 8), np.uint8))
    assert empty.gated and empty.instance_count == 0  # "no subject" shown on the device
    reference = separate_instances(alpha, min_area_fraction=0.002)
    assert post.instance_count == len(reference) == 2
    assert np.array_equal(post.instances.labels, reference.labels)


def test_latency_csv_from_a_predict_report_round_trips(tmp_path, capsys):
    report = {"images": [
        {"name": "a", "error": None, "latency_ms": {
            "decode": 9, "preprocess": 1.0, "model": 2.5, "postprocess": 0.5, "write": 3}},
        {"name": "b", "error": "bad photo"},
    ]}  # fmt: skip
    text = latency_csv_from_report(report)
    assert parse_latency_csv(text.replace("\nb", ""), stems={"a"}) == {
        "a": {"total": 4.0, "preprocess": 1.0, "model": 2.5, "postprocess": 0.5}
    }
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    assert main(["--latency-csv", str(path)]) == 0
    assert capsys.readouterr().out == text
