"""Export a trained reference checkpoint to a ``torch.export`` program + spec sidecar + model card.

``python -m pipelines.reference.export --ckpt FILE --out fixtures/models/subject-lift-1.1.0.pt2
--version 1.1.0 [--data ../shared/data]``

Why the validation IoU is recomputed here: the card must describe the *shipped artefact*, so the
score comes from the exported program run at the 512×512 contract, not from the eager model in
training. The EMA weights are exported (they are what training validated and kept as best).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jsonschema
import torch

from pipelines.hashing import sha256_file
from pipelines.reference.data import load_items, split_pairs, validation_negatives
from pipelines.reference.declared import chosen_on_validation, declared_line
from pipelines.reference.gating import (
    MAX_SUBJECT_GATED,
    GateReport,
    gate_report,
    reliability_markdown,
)
from pipelines.reference.model import ModelConfig, SubjectLiftNet, build_model, count_params
from pipelines.reference.train import CONTRACT_SIZE, command_line, score_items
from pipelines.spec.build import build_spec

MAX_BYTES = 10 * 1024 * 1024  # product limit for a shipped reference model file
GATE_THRESHOLD = 0.5  # the spec default, used when no threshold is picked (``--gate fixed``)
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


def load_checkpoint_model(ckpt_path: Path) -> tuple[SubjectLiftNet, dict]:
    """Rebuild the network from the config stored in the checkpoint, with its EMA weights."""
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    model = build_model(ModelConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt.get("ema", ckpt["model"]))
    return model.eval(), ckpt


def interpolate_weights(model: SubjectLiftNet, parent: Path, weight: float) -> None:
    """Set ``model``'s weights to ``(1 - weight) · parent + weight · model`` (in place).

    Weight-space interpolation between a fine-tuned network and the parent it was fine-tuned from
    (WiSE-FT, Wortsman et al. 2022): both sit in one basin, and the interpolation often keeps most
    of what fine-tuning added while losing less of what the parent did well. Every floating-point
    entry (BatchNorm running statistics included) is interpolated; integer counters keep
    ``model``'s. ``parent`` is an exported ``.pt2`` of the same architecture.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"interpolation weight must be within [0, 1], got {weight}")
    base = torch.export.load(str(parent)).state_dict
    own = model.state_dict()
    if set(base) != set(own) or any(base[k].shape != v.shape for k, v in own.items()):
        raise ValueError(f"{parent}: weights do not fit the {model.cfg} network")
    model.load_state_dict(
        {
            k: (1 - weight) * base[k] + weight * v if v.dtype.is_floating_point else v
            for k, v in own.items()
        }
    )


def export_program(model: SubjectLiftNet) -> torch.export.ExportedProgram:
    """Trace at the contract's 1×3×512×512 (static shape: what every runner feeds)."""
    example = torch.randn(1, 3, CONTRACT_SIZE, CONTRACT_SIZE)
    with torch.no_grad():
        ep = torch.export.export(model.eval(), (example,))
    # The saved archive embeds the example inputs uncompressed (3 MB at 512x512 float32). Keep the
    # shape/dtype for tools that read them, but as a stride-0 view of one element: a few bytes.
    ep.example_inputs = ((torch.zeros(1).expand(1, 3, CONTRACT_SIZE, CONTRACT_SIZE),), {})
    return ep


def make_spec(
    card_name: str,
    image_sha256: list[str],
    gate_threshold: float = GATE_THRESHOLD,
    *,
    tuned_image_sha256: list[str] | None = None,
    selected_image_sha256: list[str] | None = None,
) -> dict:
    """Model-spec document (see docs/contracts/model-spec.md) for this network's I/O.

    ``tuned_image_sha256`` / ``selected_image_sha256``: the images a setting (the gate threshold)
    or the exported weights (best checkpoint, interpolation weight) were chosen on; the platform
    names any set containing them as biased evidence for this version.
    """
    training: dict[str, Any] = {"card": card_name, "image_sha256": image_sha256}
    if tuned_image_sha256:
        training["tuned_image_sha256"] = tuned_image_sha256
    if selected_image_sha256:
        training["selected_image_sha256"] = selected_image_sha256
    return build_spec(
        "torch_export", size=CONTRACT_SIZE, gate_threshold=gate_threshold, training=training
    )


def _training_lines(args: dict, gated: bool) -> str:
    """The card's description of what the training run did, from the checkpoint's ``args``."""
    init = args.get("init")
    lines = []
    if init:
        parent = Path(str(init)).stem.removeprefix("subject-lift-")
        lines.append(
            f"- Parent: **{parent}**. Fine-tuned from its shipped weights (`--init {init}`: the "
            "exported program's state dict loaded into the same architecture); no other "
            "pretrained weights."
        )
    else:
        lines.append("- From scratch (no pretrained weights).")
    if args.get("synth"):
        p_neg, p_comp = args.get("p_negative"), args.get("p_composite")
        lines.append(
            f"- Samples per step: {p_neg:.0%} no-subject negatives (confidence target 0): real "
            "no-subject crops of the training photos at three scales (2–8 %, 8–25 %, 25–60 % of "
            "the photo, mask empty within the crop), the synthetic generator's negatives "
            "(`pipelines.synth.negatives`: inpainted backgrounds of training photos, noise, "
            "gradients, stripes), procedural textures, and the empty-mask training item "
            f"(PASCAL-S 359); {p_comp:.0%} on-the-fly composites — a foreground composited onto a "
            "sampled background (real crop / generator negative / texture) each step, the "
            "foreground being a generator person (`pipelines.synth.people`, "
            f"{args.get('p_person'):.0%}) or a real cut-out of a training photo by its "
            "ground-truth mask; the rest random resized crops of the real photos. Colour "
            "jitter and flips on all."
        )
    else:
        lines.append(
            "- Augmentation: random resized crop (stretch), flip, colour jitter, cut-and-paste "
            "composites onto background crops / procedural textures, background-only negatives."
        )
    conf_w = args.get("conf_weight", 0.2)
    lines.append(
        f"- Loss: BCE + soft IoU on alpha, {conf_w} × BCE on the confidence logit"
        + (
            " (a proper scoring rule: its sigmoid is trained as P(subject present))."
            if gated
            else "."
        )
    )
    lines.append(
        f"- AdamW (lr {args.get('lr')}, weight decay {args.get('weight_decay')}), warm-up "
        f"{args.get('warmup_steps', 300)} steps + cosine over the time budget, batch "
        f"{args.get('batch_size')}, EMA of weights (exported)."
    )
    return "\n".join(lines)


def _gate_section(gate: GateReport, n_val: int) -> str:
    n_subj, n_no, n_extra = gate.n_subject, gate.n_no_subject, gate.n_extra_negatives

    def row(label: str, n: int, share: float) -> str:
        return f"| {label} | {n} | {share:.4f} ({round(share * n)}) |"

    rows = "\n".join(
        [
            row("PASCAL-S 401–500 with a subject", n_subj, gate.gated_subject),
            row("PASCAL-S 401–500 without a subject", n_no, gate.gated_no_subject),
            row("validation-only no-subject images", n_extra, gate.gated_extra_negatives),
        ]
    )
    return f"""
## Confidence gate
The platform shows "no subject" (an all-zero alpha) when `sigmoid(confidence) < gate_threshold`.
The threshold **{gate.threshold:.4f}** (in the spec's `gate_threshold`) was picked on validation:
among thresholds halfway between consecutive validation confidences, the one maximising balanced
accuracy (mean of no-subject items gated and subject items passed) with at most
{MAX_SUBJECT_GATED:.0%} of subject items gated. The items: the {n_val} validation photos ({n_subj}
with a subject, {n_no} with an empty mask) plus {n_extra} no-subject images made
only from the validation photos (`data.validation_negatives`: a real no-subject crop per photo where
one exists, the generator's inpainted background of each photo, one procedural generator negative
per photo). Measured with the exported program:

| | items | gated |
|---|---|---|
{rows}

Mean IoU on PASCAL-S 401–500 without the gate **{gate.val_iou:.4f}**; as the platform scores
gated output (a gated item's alpha is all zeros: IoU 1 on an empty mask, 0 on a subject)
**{gate.val_iou_gated:.4f}**.

Calibration of P(subject) = sigmoid(confidence) on all {n_val + n_extra} items above
(10 equal-width bins): expected calibration error (ECE) **{gate.ece:.4f}**. Reliability table:

{reliability_markdown(gate.reliability)}
"""


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
    gate: GateReport | None = None,
    run: dict | None = None,
    hardware: str = "2-core CPU",
    checkpoint: str = "best.pt",
    interpolation: tuple[str, float] | None = None,
    declared: str = "",
) -> str:
    """Markdown model card; its ``key: value`` lines at the top are what tests compare against.

    ``run``: the training run's final state (``last.pt`` without weights) when the exported
    checkpoint is the best one of a longer run; ``gate``: the confidence-gate report;
    ``declared``: the `declared_line` for the spec's declared data.
    """
    cfg = model.cfg
    args = ckpt.get("args", {})
    if gate is None:  # the 1.0.0/1.1.0 card layout, kept as it was
        flags = ("out", "config", "minutes", "seed", "threads", "data")
        train_line = (
            "- Training command: `python -m pipelines.reference.train "
            + " ".join(f"--{k} {args.get(k)}" for k in flags)
            + "`"
        )
    else:
        phases = ckpt.get("phases") or [{"from_step": 0, "args": args}]
        if len(phases) == 1:
            train_line = f"- Training command: `{command_line(phases[0]['args'])}`"
        else:  # resumed with other arguments (e.g. a lower --lr): every command, with its steps
            ends = [ph["from_step"] for ph in phases[1:]] + [ckpt.get("step", 0)]
            train_line = "- Training commands (resumed with other arguments): " + ", then ".join(
                f"`{command_line(ph['args'])}` (steps {ph['from_step']}–{end})"
                for ph, end in zip(phases, ends, strict=True)
            )
    steps, samples = ckpt.get("step", 0), ckpt.get("samples", 0)
    epochs = samples / n_train if n_train else 0.0
    if gate is None:
        head = f"validation_iou: {val_iou:.4f}\n"
        training = (
            "- From scratch (no pretrained weights). Loss: BCE + soft IoU on alpha, 0.2 × BCE on "
            "confidence.\n"
            f"  AdamW (lr {args.get('lr')}, weight decay {args.get('weight_decay')}), warm-up + "
            "cosine over the\n"
            f"  time budget, batch {args.get('batch_size')}, EMA of weights (exported).\n"
            f"- Steps: {steps}; epochs: {epochs:.1f}; wall time: "
            f"{ckpt.get('elapsed_s', 0.0) / 60:.1f} min;\n"
            f"  hardware: 2-core CPU ({args.get('threads')} torch threads); seed: "
            f"{args.get('seed')}."
        )
        gate_text, threshold = "", GATE_THRESHOLD
    else:
        head = (
            f"validation_iou: {val_iou:.4f}\n"
            f"validation_iou_gated: {gate.val_iou_gated:.4f}\n"
            f"gate_threshold: {gate.threshold:.4f}\n"
            f"gated_no_subject: {gate.gated_no_subject:.4f}\n"
            f"gated_subject: {gate.gated_subject:.4f}\n"
            f"ece: {gate.ece:.4f}\n"
        )
        run = run or ckpt
        total_steps, total_s = run.get("step", steps), run.get("elapsed_s", 0.0)
        select = args.get("select", "iou")
        training = (
            _training_lines(args, gated=True)
            + f"\n- Training run: {total_steps} steps in {total_s / 60:.1f} min wall time (time "
            f"budget {args.get('minutes')} min, validation included"
            + (
                "; stopped by hand before the end of the budget"
                if total_s < float(args.get("minutes") or 0) * 60 - 60
                else ""
            )
            + f"). Checkpoint `{checkpoint}`: "
            f"the EMA of the weights at step {steps} (epoch {epochs:.1f})"
            + (
                f", the best validation {'gated IoU' if select == 'gated_iou' else 'IoU'} of the "
                "run's checkpoints."
                if checkpoint == "best.pt"
                else "."
            )
            + (
                ""
                if interpolation is None
                else f"\n- Exported weights: `{1 - interpolation[1]:.2g} × parent + "
                f"{interpolation[1]:.2g} × checkpoint`, interpolated in weight space with the "
                f"parent `{interpolation[0]}` (WiSE-FT; the weight chosen on validation — it "
                "kept the fine-tune's gate and lost less of the parent's IoU)."
            )
            + "\n"
            f"- Hardware: {hardware}; {args.get('threads')} torch thread(s); seed "
            f"{args.get('seed')}."
        )
        gate_text, threshold = _gate_section(gate, n_val), gate.threshold
    return f"""# Subject-lift reference model {version}

{head}
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
alpha probability (index 0), confidence logit (index 1), gate threshold {threshold:.4g}.

## Training
- Data: {n_train} images — all of `sod/` (300) and `pascal-s` items 1–400 (`../shared/data`);
  sha256 of every training image in the spec sidecar.
{declared + chr(10) if declared else ""}{training}
{train_line}
- Export command: `{command}`

## Evaluation
Validation: `pascal-s` items 401–500 ({n_val} images, held out from training). Each image stretched
to 512×512, run through the **exported** program, alpha resized back to the mask size (bilinear),
threshold 0.5, IoU per image (both empty = 1.0), mean over images: **{val_iou:.4f}**.
{gate_text}
## Limitations
Trained on ~700 research-only photos (BSDS500, PASCAL VOC) for minutes on a CPU: a demo/reference
candidate, not a production model. Research-use-only data licences apply to the weights' provenance.
"""


def export(
    ckpt_path: Path,
    out: Path,
    version: str,
    data: Path,
    schema_path: Path | None = None,
    gate: str = "pick",
    hardware: str = "2-core CPU",
    interpolate_from: Path | None = None,
    interpolate_weight: float = 1.0,
) -> dict:
    """Write OUT (.pt2), OUT.spec.json and <stem>.card.md; returns a summary dict.

    ``gate``: "pick" chooses the gate threshold on validation with the exported program (see the
    card's gate section), "fixed" keeps the spec default 0.5 and the old card layout.
    """
    t0 = time.time()
    model, ckpt = load_checkpoint_model(ckpt_path)
    if interpolate_from is not None:
        interpolate_weights(model, interpolate_from, interpolate_weight)
    ep = export_program(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(ep, str(out))
    size = out.stat().st_size
    if size > MAX_BYTES:
        raise ValueError(
            f"{out} is {size / 1e6:.1f} MB, over the 10 MB limit; use a smaller config"
        )

    train_pairs, val_pairs = split_pairs(data)
    val_items = load_items(val_pairs)
    loaded = torch.export.load(str(out)).module()
    ious, probs = score_items(loaded, val_items, batch=1)  # static 1×3×512×512 program
    val_iou = float(sum(ious) / len(ious))
    report: GateReport | None = None
    threshold = GATE_THRESHOLD
    if gate == "pick":
        seed = int(ckpt.get("args", {}).get("seed", 0))
        extra_items = validation_negatives(val_items, seed=seed)
        _, extra = score_items(loaded, extra_items, batch=1)
        has_subject = [bool(it.mask.any()) for it in val_items]
        picked = gate_report(ious=ious, probs=probs, has_subject=has_subject, extra_probs=extra)
        # The spec stores 4 decimals; report the numbers at exactly the stored threshold.
        threshold = round(picked.threshold, 4)
        report = gate_report(
            ious=ious, probs=probs, has_subject=has_subject, extra_probs=extra, threshold=threshold
        )

    card_path = out.with_name(f"{out.stem}.card.md")
    tuned, selected_why = chosen_on_validation(
        gate=gate, checkpoint=ckpt_path.name, interpolated=interpolate_from is not None
    )
    val_sha256 = [sha256_file(p[0]) for p in val_pairs]
    spec = make_spec(
        card_path.name,
        [sha256_file(p[0]) for p in train_pairs],
        threshold,
        tuned_image_sha256=val_sha256 if tuned else None,
        selected_image_sha256=val_sha256 if selected_why else None,
    )
    jsonschema.validate(spec, json.loads(find_schema(schema_path).read_text()))
    spec_path = out.with_name(out.name + ".spec.json")
    spec_path.write_text(json.dumps(spec, indent=2) + "\n")
    command = "python -m pipelines.reference.export " + shlex.join(sys.argv[1:])
    last = ckpt_path.with_name("last.pt")
    run = None
    if report is not None and last.exists() and last.resolve() != ckpt_path.resolve():
        last_ck = torch.load(last, map_location="cpu", weights_only=False)
        run = {"step": last_ck.get("step"), "elapsed_s": last_ck.get("elapsed_s")}
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
            gate=report,
            run=run,
            hardware=hardware,
            checkpoint=ckpt_path.name,
            interpolation=(
                None if interpolate_from is None else (str(interpolate_from), interpolate_weight)
            ),
            declared=declared_line(
                n_train=len(train_pairs),
                n_val=len(val_pairs),
                tuned=tuned,
                selected_why=selected_why,
            ),
        )
    )
    return {
        "out": str(out),
        "bytes": size,
        "val_iou": val_iou,
        "gate": report.to_dict() if report else None,
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
    ap.add_argument(
        "--gate",
        choices=("pick", "fixed"),
        default="pick",
        help="pick the gate threshold on validation (default) or keep the spec default 0.5",
    )
    ap.add_argument("--hardware", default="2-core CPU", help="what the card names as hardware")
    ap.add_argument(
        "--interpolate-from", type=Path, default=None, help="parent .pt2 to interpolate with"
    )
    ap.add_argument(
        "--interpolate-weight", type=float, default=1.0, help="share of the checkpoint (0..1)"
    )
    a = ap.parse_args(argv)
    print(
        json.dumps(
            export(
                a.ckpt,
                a.out,
                a.version,
                a.data,
                a.schema,
                a.gate,
                a.hardware,
                a.interpolate_from,
                a.interpolate_weight,
            ),
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
