"""Export a trained reference checkpoint to a ``torch.export`` program + spec sidecar + model card.

``python -m pipelines.reference.export --ckpt FILE --out fixtures/models/subject-lift-1.1.0.pt2
--version 1.1.0 [--data ../shared/data]``

Why the validation IoU is recomputed here: the card must describe the *shipped artefact*, so the
score comes from the exported program run at the 512×512 contract, not from the eager model in
training. The EMA weights are exported (they are what training validated and kept as best).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import jsonschema
import torch

from pipelines.reference.data import load_items, split_pairs
from pipelines.reference.model import ModelConfig, SubjectLiftNet, build_model, count_params
from pipelines.reference.train import CONTRACT_SIZE, evaluate

MAX_BYTES = 10 * 1024 * 1024  # product limit for a shipped reference model file
GATE_THRESHOLD = 0.5
SCHEMA_NAME = "model-spec.schema.json"


def find_schema(explicit: Path | None = None) -> Path:
    """The project's copy of the model-spec schema, else the shared contract; else fail loudly."""
    if explicit is not None:
        return explicit
    repo = Path(__file__).resolve().parents[2]
    skip = {".venv", "var", "node_modules", ".git"}
    tops = [d for d in repo.iterdir() if d.is_dir() and d.name not in skip]
    candidates = [repo / SCHEMA_NAME, *sorted(p for d in tops for p in d.rglob(SCHEMA_NAME))]
    candidates.append(repo.parent / "shared" / "contracts" / SCHEMA_NAME)
    for c in candidates:
        if c.exists():
            return c
    raise FileNotFoundError(
        f"{SCHEMA_NAME} not found in the project or ../shared/contracts; pass --schema"
    )


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_checkpoint_model(ckpt_path: Path) -> tuple[SubjectLiftNet, dict]:
    """Rebuild the network from the config stored in the checkpoint, with its EMA weights."""
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    model = build_model(ModelConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt.get("ema", ckpt["model"]))
    return model.eval(), ckpt


def export_program(model: SubjectLiftNet) -> torch.export.ExportedProgram:
    """Trace at the contract's 1×3×512×512 (static shape: what every runner feeds)."""
    example = torch.randn(1, 3, CONTRACT_SIZE, CONTRACT_SIZE)
    with torch.no_grad():
        ep = torch.export.export(model.eval(), (example,))
    # The saved archive embeds the example inputs uncompressed (3 MB at 512x512 float32). Keep the
    # shape/dtype for tools that read them, but as a stride-0 view of one element: a few bytes.
    ep.example_inputs = ((torch.zeros(1).expand(1, 3, CONTRACT_SIZE, CONTRACT_SIZE),), {})
    return ep


def make_spec(card_name: str, image_sha256: list[str]) -> dict:
    """Model-spec document (see shared/contracts/model-spec.md) for this network's I/O."""
    return {
        "spec_version": 1,
        "format": "torch_export",
        "input": {
            "name": "image",
            "layout": "NCHW",
            "size": [CONTRACT_SIZE, CONTRACT_SIZE],
            "color": "RGB",
            "scale": 255.0,
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
            "resize": "stretch",
        },
        "outputs": {
            "alpha": {"index": 0, "kind": "probability"},
            "confidence": {"index": 1, "kind": "logit"},
        },
        "gate_threshold": GATE_THRESHOLD,
        "training": {"card": card_name, "image_sha256": image_sha256},
    }


def make_card(
    *,
    version: str,
    model: SubjectLiftNet,
    ckpt: dict,
    val_iou: float,
    n_train: int,
    n_val: int,
    file_bytes: int,
    command: str,
) -> str:
    """Markdown model card; ``validation_iou:`` is a machine-readable line tests compare against."""
    cfg = model.cfg
    args = ckpt.get("args", {})
    flags = ("out", "config", "minutes", "seed", "threads", "data")
    train_cmd = "python -m pipelines.reference.train " + " ".join(
        f"--{k} {args.get(k)}" for k in flags
    )
    steps, samples = ckpt.get("step", 0), ckpt.get("samples", 0)
    epochs = samples / n_train if n_train else 0.0
    return f"""# Subject-lift reference model {version}

validation_iou: {val_iou:.4f}

## Architecture
EfficientNetV2-style encoder (Fused-MBConv in the stride-2/4/8 stages, MBConv + squeeze-excitation
in the stride-16/32 stages; width_mult {cfg.width_mult}, depth_mult {cfg.depth_mult}), FPN decoder
over strides 4/8/16/32 ({cfg.decoder_channels} channels), a global branch (pool + MLP) predicting a
channel-wise affine `decoded * (1 + scale) + shift` of the decoded features, and a scalar
subject-present confidence logit. Internally works at {cfg.work_size}×{cfg.work_size}; the alpha is
upsampled back to the 512×512 contract input. Parameters: {count_params(model):,}. File size:
{file_bytes / 1e6:.2f} MB (`torch.export`, .pt2).

## I/O
Input 1×3×512×512 RGB, `(x / 255 - mean) / std` with ImageNet mean/std, stretch resize. Outputs:
alpha probability (index 0), confidence logit (index 1), gate threshold {GATE_THRESHOLD}.

## Training
- Data: {n_train} images — all of `sod/` (300) and `pascal-s` items 1–400 (`../shared/data`);
  sha256 of every training image in the spec sidecar. Augmentation: random resized crop (stretch),
  flip, colour jitter, cut-and-paste composites onto background crops / procedural textures,
  background-only negatives (empty mask, confidence target 0).
- From scratch (no pretrained weights). Loss: BCE + soft IoU on alpha, 0.2 × BCE on confidence.
  AdamW (lr {args.get("lr")}, weight decay {args.get("weight_decay")}), warm-up + cosine over the
  time budget, batch {args.get("batch_size")}, EMA of weights (exported).
- Steps: {steps}; epochs: {epochs:.1f}; wall time: {ckpt.get("elapsed_s", 0.0) / 60:.1f} min;
  hardware: 2-core CPU ({args.get("threads")} torch threads); seed: {args.get("seed")}.
- Training command: `{train_cmd}`
- Export command: `{command}`

## Evaluation
Validation: `pascal-s` items 401–500 ({n_val} images, held out from training). Each image stretched
to 512×512, run through the **exported** program, alpha resized back to the mask size (bilinear),
threshold 0.5, IoU per image (both empty = 1.0), mean over images: **{val_iou:.4f}**.

## Limitations
Trained on ~700 research-only photos (BSDS500, PASCAL VOC) for minutes on a CPU: a demo/reference
candidate, not a production model. Research-use-only data licences apply to the weights' provenance.
"""


def export(
    ckpt_path: Path, out: Path, version: str, data: Path, schema_path: Path | None = None
) -> dict:
    """Write OUT (.pt2), OUT.spec.json and <stem>.card.md; returns a summary dict."""
    t0 = time.time()
    model, ckpt = load_checkpoint_model(ckpt_path)
    ep = export_program(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(ep, str(out))
    size = out.stat().st_size
    if size > MAX_BYTES:
        raise ValueError(
            f"{out} is {size / 1e6:.1f} MB, over the 10 MB limit; use a smaller config"
        )

    train_pairs, val_pairs = split_pairs(data)
    loaded = torch.export.load(str(out)).module()
    val_iou = evaluate(lambda x: loaded(x)[0], load_items(val_pairs), batch=1)

    card_path = out.with_name(f"{out.stem}.card.md")
    spec = make_spec(card_path.name, [sha256_file(p[0]) for p in train_pairs])
    jsonschema.validate(spec, json.loads(find_schema(schema_path).read_text()))
    spec_path = out.with_name(out.name + ".spec.json")
    spec_path.write_text(json.dumps(spec, indent=2) + "\n")
    command = "python -m pipelines.reference.export " + " ".join(sys.argv[1:])
    card_path.write_text(
        make_card(
            version=version,
            model=model,
            ckpt=ckpt,
            val_iou=val_iou,
            n_train=len(train_pairs),
            n_val=len(val_pairs),
            file_bytes=size,
            command=command,
        )
    )
    return {
        "out": str(out),
        "bytes": size,
        "val_iou": val_iou,
        "spec": str(spec_path),
        "card": str(card_path),
        "seconds": round(time.time() - t0, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--schema", type=Path, default=None)
    a = ap.parse_args(argv)
    print(json.dumps(export(a.ckpt, a.out, a.version, a.data, a.schema), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
