"""Format sniffing from content, pickle refusal and safe zip handling."""

from __future__ import annotations

import io
import json
import os
import pickle
import stat
import zipfile
from pathlib import Path

import pytest
import torch

from pipelines.formats import (
    FormatError,
    UnsafeArchive,
    safe_extract,
    safe_zip_check,
    sniff_format,
)
from tests.pipelines.test_runners_models import TinyNet, save_onnx, save_pt2, save_torchscript

SMALL = 32


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("models")
    net = TinyNet()
    return {
        "pt2": save_pt2(net, d / "m.pt2", SMALL),
        "ts": save_torchscript(net, d / "m.ts"),
        "onnx": save_onnx(net, d / "m.onnx", SMALL),
    }


def test_it_sniffs_export_torchscript_and_onnx_by_content_not_extension(
    models: dict[str, Path], tmp_path: Path
) -> None:
    for key, expected in (("pt2", "torch_export"), ("ts", "torchscript"), ("onnx", "onnx")):
        disguised = tmp_path / f"{key}.bin"
        disguised.write_bytes(models[key].read_bytes())
        assert sniff_format(disguised) == expected


def test_it_sniffs_coreml_packages_zipped_or_not_and_mlmodel_protobufs(tmp_path: Path) -> None:
    package = tmp_path / "m.mlpackage"
    (package / "Data").mkdir(parents=True)
    (package / "Manifest.json").write_text("{}")
    assert sniff_format(package) == "coreml"
    zipped = tmp_path / "m.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("m.mlpackage/Manifest.json", "{}")
    assert sniff_format(zipped) == "coreml"

    from coremltools.proto import Model_pb2

    model = Model_pb2.Model(specificationVersion=7)
    model.description.input.add().name = "image"
    model.neuralNetwork.SetInParent()
    mlmodel = tmp_path / "m.mlmodel"
    mlmodel.write_bytes(model.SerializeToString())
    assert sniff_format(mlmodel) == "coreml"


def test_it_rejects_pickled_checkpoint_with_accepted_formats_and_how_to_export(
    tmp_path: Path,
) -> None:
    checkpoint = tmp_path / "model.pt2"  # the extension lies
    torch.save(TinyNet(), checkpoint)
    with pytest.raises(FormatError) as err:
        sniff_format(checkpoint)
    message = str(err.value)
    assert "pickled checkpoint" in message
    assert "torch.export archive (.pt2), TorchScript (.pt), ONNX (.onnx), Core ML" in message
    assert 'torch.export.save(ep, "model.pt2")' in message and "torch.onnx.export" in message


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_it_rejects_raw_pickles_of_any_protocol(tmp_path: Path, protocol: int) -> None:
    path = tmp_path / "state.pkl"
    path.write_bytes(pickle.dumps({"weight": [1.0, 2.0]}, protocol=protocol))
    with pytest.raises(FormatError, match="pickled checkpoint"):
        sniff_format(path)


def test_random_bytes_are_not_a_recognised_model_file(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(os.urandom(64 * 1024))
    with pytest.raises(FormatError, match="not a recognised model file"):
        sniff_format(path)
    empty = tmp_path / "empty.pt2"
    empty.write_bytes(b"")
    with pytest.raises(FormatError, match="empty file"):
        sniff_format(empty)


def test_safetensors_are_refused_with_how_to_export(tmp_path: Path) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    path = tmp_path / "w.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\0\0\0\0")
    with pytest.raises(FormatError, match="weights without the network"):
        sniff_format(path)


def _rewrite_zip(src: Path, dst: Path, edit: dict[str, bytes]) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = edit.get(info.filename.split("/", 1)[1], zin.read(info))
            zout.writestr(info, data)


def test_pt2_with_pickled_payloads_is_refused(models: dict[str, Path], tmp_path: Path) -> None:
    with zipfile.ZipFile(models["pt2"]) as zf:
        name = next(n for n in zf.namelist() if n.endswith("model_weights_config.json"))
        config = json.loads(zf.read(name))
    first = next(iter(config["config"]))
    config["config"][first]["use_pickle"] = True
    tampered = tmp_path / "tampered.pt2"
    _rewrite_zip(models["pt2"], tampered, {name.split("/", 1)[1]: json.dumps(config).encode()})
    with pytest.raises(FormatError, match=f"{first}' is stored as a pickle"):
        sniff_format(tampered)


def _zip_with(path: Path, name: str, data: bytes = b"x", mode: int | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.external_attr = mode << 16
        zf.writestr(info, data)
    return path


@pytest.mark.parametrize(
    ("name", "mode", "message"),
    [
        ("m.mlpackage/../../evil.txt", None, "escapes the archive"),
        ("/etc/cron.d/evil", None, "absolute path"),
        ("C:/evil", None, "absolute path"),
        ("m.mlpackage/link", stat.S_IFLNK | 0o777, "symlink entry"),
    ],
)
def test_unsafe_zip_entries_are_rejected(
    tmp_path: Path, name: str, mode: int | None, message: str
) -> None:
    path = _zip_with(tmp_path / "upload.zip", name, mode=mode)
    with pytest.raises(UnsafeArchive, match=message):
        safe_zip_check(path)
    with pytest.raises(FormatError, match=message):  # sniffing checks too
        sniff_format(path)


def test_zip_bombs_are_rejected_by_size_and_ratio(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("m.mlpackage/weights.bin", b"\0" * (4 << 20))
    with pytest.raises(UnsafeArchive, match="expands to 4 MiB"):
        safe_zip_check(path, max_total_bytes=1 << 20)
    with pytest.raises(UnsafeArchive, match="looks like a zip bomb"):
        safe_zip_check(path, max_ratio=100, ratio_floor_bytes=1 << 20)
    assert len(safe_zip_check(path)) == 1  # within the default limits


def test_safe_extract_counts_real_bytes(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("m.mlpackage/Manifest.json", b"{}")
        zf.writestr("m.mlpackage/Data/w.bin", b"\1" * 2048)
    path = tmp_path / "ok.zip"
    path.write_bytes(buf.getvalue())
    out = safe_extract(path, tmp_path / "out")
    assert (out / "m.mlpackage" / "Data" / "w.bin").stat().st_size == 2048
    with pytest.raises(UnsafeArchive):
        safe_extract(path, tmp_path / "out2", max_total_bytes=1024)
