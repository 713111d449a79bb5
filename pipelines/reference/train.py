"""Time-budgeted, resumable training of the reference network on a CPU.

``python -m pipelines.reference.train --out DIR --config small|base --minutes M [--seed S]
[--resume] [--threads T] [--data ../shared/data] [--init MODEL.pt2] [--synth] [--p-negative P]
[--p-composite P] [--p-person P] [--conf-weight W]``

``--init`` starts from the weights of an exported ``.pt2`` (its ``state_dict`` loaded into a
``SubjectLiftNet`` of the given config: a fine-tune of a shipped parent). ``--synth`` turns on the
gate-training data (real no-subject crops at several scales, the generator's negatives and
synthetic people, the empty-mask training items; see ``data.TrainSampler``). Validation reports,
besides the mean IoU, the confidence gate at a threshold picked on validation (``gating.py``):
gated shares of subject / no-subject items, the IoU scored the platform's way on gated output,
and the calibration (ECE + reliability table) of the confidence.

Why time-budgeted: the machine is a shared 2-core CPU, so a step count would finish at an unknown
time; the LR follows a warm-up + cosine over the fraction of the budget used (elapsed time is
stored in the checkpoint, so a resumed run continues the same schedule). Checkpoints are written
atomically (tmp file + ``os.replace``) every few minutes: a killed run loses at most that much. An
exponential moving average (EMA) of the weights is what gets validated, kept as ``best.pt`` and
exported — on a few hundred images it is markedly less noisy than the raw weights.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from pipelines.metrics.functional import binary_iou
from pipelines.reference.data import (
    Item,
    TrainSampler,
    load_items,
    normalize,
    split_pairs,
    validation_negatives,
)
from pipelines.reference.gating import GateReport, gate_report
from pipelines.reference.model import (
    CONFIGS,
    ModelConfig,
    SubjectLiftNet,
    build_model,
    count_params,
)
from pipelines.runners.base import sigmoid  # the runner's logistic: the same confidence

CONTRACT_SIZE = (
    512  # the model-spec input size; validation runs the model exactly as `predict` would
)


Predict2 = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def score_items(
    predict: Predict2, items: Sequence[Item], batch: int = 10, device: str = "cpu"
) -> tuple[list[float], list[float]]:
    """Per-image (IoU, confidence probability), the way the platform scores a model.

    Each image is stretched to 512×512 (the contract); ``predict`` returns (N×1×512×512 alpha,
    N confidence logits). The alpha is resized back to the mask size (bilinear) and scored by
    ``pipelines.metrics.functional.binary_iou`` (8-bit quantised, foreground = 128 and above; two
    empty masks count as 1.0). The confidence is ``sigmoid(logit)``, as the runner reports it.
    """
    ious: list[float] = []
    probs: list[float] = []
    for i in range(0, len(items), batch):
        chunk = items[i : i + batch]
        x = np.stack(
            [
                normalize(
                    cv2.resize(
                        it.image, (CONTRACT_SIZE, CONTRACT_SIZE), interpolation=cv2.INTER_LINEAR
                    )
                )
                for it in chunk
            ]
        )
        with torch.no_grad():
            alpha_t, conf_t = predict(torch.from_numpy(x).to(device))
        alpha = alpha_t.float().cpu().numpy()
        probs.extend(sigmoid(conf_t.float().cpu().numpy().reshape(-1)).tolist())
        for it, a in zip(chunk, alpha, strict=True):
            h, w = it.mask.shape
            up = np.clip(cv2.resize(a[0], (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
            ious.append(binary_iou(up, it.mask))
    return ious, probs


def evaluate(
    predict: Callable[[torch.Tensor], torch.Tensor], items: Sequence[Item], batch: int = 10
) -> float:
    """Mean per-image IoU (see :func:`score_items`) of an alpha-only ``predict``."""

    def both(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return predict(x), torch.zeros(x.shape[0])

    ious, _ = score_items(both, items, batch)
    return float(np.mean(ious)) if ious else float("nan")


def validate_gate(
    predict: Predict2,
    val_items: Sequence[Item],
    extra_negatives: Sequence[Item],
    batch: int = 10,
    device: str = "cpu",
    threshold: float | None = None,
) -> GateReport:
    """IoU (ungated and gated), gating rates and calibration on validation (see ``gating.py``)."""
    ious, probs = score_items(predict, val_items, batch, device)
    _, extra = score_items(predict, extra_negatives, batch, device) if extra_negatives else ([], [])
    return gate_report(
        ious=ious,
        probs=probs,
        has_subject=[bool(it.mask.any()) for it in val_items],
        extra_probs=extra,
        threshold=threshold,
    )


def load_init(model: SubjectLiftNet, path: Path) -> None:
    """Load an exported ``.pt2``'s weights (parameters + BatchNorm buffers) into ``model``.

    Strict: a config that does not match the exported network fails here, naming the file.
    """
    ep = torch.export.load(str(path))
    try:
        model.load_state_dict(ep.state_dict, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{path}: weights do not fit the {model.cfg} network: {e}") from e


def soft_iou_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - soft IoU per image (the +1 keeps empty-target negatives defined: alpha goes to 0)."""
    p = torch.sigmoid(logits)
    inter = (p * target).sum((1, 2, 3))
    union = (p + target - p * target).sum((1, 2, 3))
    return (1 - (inter + 1.0) / (union + 1.0)).mean()


def lr_at(progress: float, step: int, base_lr: float, warmup_steps: int = 300) -> float:
    """Linear warm-up over the first steps, then cosine to 2 % of ``base_lr`` at budget end."""
    warm = min(1.0, (step + 1) / warmup_steps)
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return base_lr * warm * (0.02 + 0.98 * cos)


def ema_update(
    ema: torch.nn.Module, model: torch.nn.Module, step: int, decay: float = 0.999
) -> None:
    """EMA of all float params/buffers (BatchNorm stats included); short horizon early on."""
    d = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for e, m in zip(ema.state_dict().values(), model.state_dict().values(), strict=True):
            if e.dtype.is_floating_point:
                e.lerp_(m, 1 - d)
            else:
                e.copy_(m)


def atomic_save(obj: dict, path: Path) -> None:
    """Write a temp file in the same directory, then rename: a crash never leaves a torn file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def command_line(args: dict[str, Any]) -> str:
    """The training command for stored ``args``: required flags plus every non-default one.

    Rebuilds what was typed (in the parser's order) from a checkpoint's ``args``, so a card can
    quote a rerunnable command without trusting a shell history.
    """
    parts = ["python -m pipelines.reference.train"]
    for action in build_parser()._actions:
        if not action.option_strings or action.dest == "help" or action.dest not in args:
            continue
        value, flag = args[action.dest], action.option_strings[0]
        default = action.default
        if isinstance(default, Path):
            default = str(default)
        if action.required or action.dest in ("config", "seed", "data") or value != default:
            if isinstance(action, argparse._StoreTrueAction):
                if value:
                    parts.append(flag)
            else:
                parts.append(f"{flag} {value}")
    return " ".join(parts)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="base")
    ap.add_argument(
        "--minutes", type=float, required=True, help="wall-clock budget, validation included"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument(
        "--batch-size", type=int, default=16, help="16: ~0.5 s/step for base on 2 threads"
    )
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--ckpt-minutes", type=float, default=3.0)
    ap.add_argument(
        "--max-steps", type=int, default=0, help="stop after this many steps (0: budget only)"
    )
    ap.add_argument("--init", type=Path, default=None, help="start from an exported .pt2")
    ap.add_argument("--synth", action="store_true", help="gate-training data (see TrainSampler)")
    ap.add_argument("--p-negative", type=float, default=0.1)
    ap.add_argument("--p-composite", type=float, default=0.3)
    ap.add_argument("--p-person", type=float, default=0.0, help="share of composites: people")
    ap.add_argument("--conf-weight", type=float, default=0.2, help="weight of confidence BCE")
    ap.add_argument("--warmup-steps", type=int, default=300)
    ap.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda")
    ap.add_argument(
        "--select",
        choices=("iou", "gated_iou"),
        default="iou",
        help="validation number that picks best.pt (gated_iou: the platform's score with the gate)",
    )
    ap.add_argument("--progress-seconds", type=float, default=60.0)
    return ap


def _args_dict(args: argparse.Namespace) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}


def _same_run(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two argument sets train the same way (``--resume`` itself does not count)."""
    return {k: v for k, v in a.items() if k != "resume"} == {
        k: v for k, v in b.items() if k != "resume"
    }


def _checkpoint(
    model: SubjectLiftNet,
    ema: SubjectLiftNet,
    opt: torch.optim.Optimizer,
    state: dict,
    rng: np.random.Generator,
    args: argparse.Namespace,
) -> dict:
    return {
        "model": model.state_dict(),
        "ema": ema.state_dict(),
        "optimizer": opt.state_dict(),
        "config": model.cfg.to_dict(),
        "rng": {
            "numpy": rng.bit_generator.state,
            "torch": torch.get_rng_state(),
            "python": random.getstate(),
        },
        "args": _args_dict(args),
        **state,
    }


def _device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def _fmt_minutes(seconds: float) -> str:
    m = int(max(0.0, seconds) // 60)
    return f"{m // 60}:{m % 60:02d}"


def train(args: argparse.Namespace) -> dict:
    """Run (or resume) one training; returns the final summary also written to OUT/summary.json."""
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)  # augmentation runs between steps; keep it off torch's threads
    device = _device(args.device)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    cfg: ModelConfig = CONFIGS[args.config]
    ckpt = (
        torch.load(out / "last.pt", map_location="cpu", weights_only=False)
        if args.resume and (out / "last.pt").exists()
        else None
    )
    if ckpt is not None:
        cfg = ModelConfig.from_dict(ckpt["config"])
    model = build_model(cfg)
    if ckpt is None and args.init is not None:
        load_init(model, args.init)
        print(f"initialised from {args.init}", flush=True)
    model = model.to(device=device, memory_format=torch.channels_last)  # type: ignore[call-overload]  # 1.5x faster
    ema = copy.deepcopy(model).eval()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    state: dict[str, Any] = {
        "step": 0,
        "elapsed_s": 0.0,
        "samples": 0,
        "best_iou": -1.0,
        "best_step": -1,
        "last_iou": None,
        "last_gate": None,
        "best_gate": None,
        # Each (from_step, args) a run went through: a resume with other arguments (e.g. a lower
        # --lr) starts a new phase, so a card can quote every command that shaped the weights.
        "phases": [{"from_step": 0, "args": _args_dict(args)}],
    }
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        ema.load_state_dict(ckpt["ema"])
        opt.load_state_dict(ckpt["optimizer"])
        rng.bit_generator.state = ckpt["rng"]["numpy"]
        torch.set_rng_state(ckpt["rng"]["torch"])
        random.setstate(ckpt["rng"]["python"])
        state = {k: ckpt.get(k) for k in state}
        state["phases"] = ckpt.get("phases") or [{"from_step": 0, "args": ckpt["args"]}]
        if not _same_run(state["phases"][-1]["args"], _args_dict(args)):
            state["phases"].append({"from_step": state["step"], "args": _args_dict(args)})
        print(f"resumed from {out / 'last.pt'} at step {state['step']}", flush=True)

    train_pairs, val_pairs = split_pairs(args.data)
    train_items, val_items = load_items(train_pairs), load_items(val_pairs)
    extra_negatives = validation_negatives(val_items, seed=args.seed) if args.synth else []
    sampler = TrainSampler(
        train_items,
        cfg.work_size,
        p_composite=args.p_composite,
        p_negative=args.p_negative,
        p_person=args.p_person,
        synth=args.synth,
    )
    n_params = count_params(model)
    print(
        f"config={args.config} params={n_params} train={len(train_items)} val={len(val_items)} "
        f"val_extra_negatives={len(extra_negatives)} device={device}",
        str(cfg),
        flush=True,
    )

    log_path = out / "log.csv"
    new_log = not log_path.exists()
    log_f = log_path.open("a", newline="")
    log = csv.writer(log_f)
    if new_log:
        log.writerow(
            ["step", "elapsed_s", "epochs", "lr", "loss", "val_iou", "val_iou_gated",
             "gate_threshold", "gated_no_subject", "gated_subject", "gated_extra_negatives", "ece"]
        )  # fmt: skip

    def save(best: bool) -> None:
        ck = _checkpoint(model, ema, opt, state, rng, args)
        atomic_save(ck, out / "last.pt")
        if best:
            atomic_save(ck, out / "best.pt")

    def validate() -> None:
        rep = validate_gate(ema, val_items, extra_negatives, device=device)
        state["last_iou"], state["last_gate"] = rep.val_iou, rep.to_dict()
        score = rep.val_iou_gated if args.select == "gated_iou" else rep.val_iou
        better = score > state["best_iou"]
        if better:
            state["best_iou"], state["best_step"] = score, state["step"]
            state["best_gate"] = rep.to_dict()
        log.writerow(
            [
                state["step"],
                round(state["elapsed_s"], 1),
                round(state["samples"] / len(train_items), 2),
                "",
                "",
                round(rep.val_iou, 4),
                round(rep.val_iou_gated, 4),
                round(rep.threshold, 4),
                round(rep.gated_no_subject, 4),
                round(rep.gated_subject, 4),
                round(rep.gated_extra_negatives, 4) if extra_negatives else "",
                round(rep.ece, 4),
            ]
        )
        log_f.flush()
        print(
            f"step {state['step']} val_iou {rep.val_iou:.4f} gated {rep.val_iou_gated:.4f} "
            f"@ threshold {rep.threshold:.3f}: no-subject gated {rep.gated_no_subject:.2f} "
            f"(extra {rep.gated_extra_negatives:.2f}), subject gated {rep.gated_subject:.3f}, "
            f"ECE {rep.ece:.3f} | best {args.select} {state['best_iou']:.4f} "
            f"@ {state['best_step']}",
            flush=True,
        )
        save(best=better)

    budget = args.minutes * 60.0
    t0, elapsed0, step0 = time.time(), state["elapsed_s"], state["step"]
    last_ckpt = state["elapsed_s"]
    last_progress = time.time()
    running = None
    model.train()
    while state["elapsed_s"] < budget and not (args.max_steps and state["step"] >= args.max_steps):
        progress = state["elapsed_s"] / budget
        if args.max_steps:
            progress = max(progress, state["step"] / args.max_steps)
        lr = lr_at(progress, state["step"], args.lr, args.warmup_steps)
        for g in opt.param_groups:
            g["lr"] = lr
        xb, yb, cb = sampler.batch(args.batch_size, rng)
        x = torch.from_numpy(xb).to(device).contiguous(memory_format=torch.channels_last)
        y, c = torch.from_numpy(yb).to(device), torch.from_numpy(cb).to(device)
        logits, conf = model.forward_logits(x)
        loss = F.binary_cross_entropy_with_logits(logits, y) + soft_iou_loss(logits, y)
        # BCE on the confidence logit: its sigmoid is trained as a calibrated P(subject present).
        loss = loss + args.conf_weight * F.binary_cross_entropy_with_logits(conf, c)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema_update(ema, model, state["step"])
        state["step"] += 1
        state["samples"] += args.batch_size
        state["elapsed_s"] = elapsed0 + time.time() - t0
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if time.time() - last_progress >= args.progress_seconds:
            last_progress = time.time()
            rate = (state["step"] - step0) / max(1e-9, time.time() - t0)
            left = budget - state["elapsed_s"]
            if args.max_steps:
                left = min(left, (args.max_steps - state["step"]) / max(rate, 1e-9))
            eta = time.strftime("%H:%M UTC", time.gmtime(time.time() + left))
            print(
                f"step {state['step']} | {_fmt_minutes(state['elapsed_s'])} of "
                f"{_fmt_minutes(budget)} | {rate:.2f} steps/s | loss {running:.3f} | "
                f"lr {lr:.2e} | ETA {eta} ({_fmt_minutes(left)} left)",
                flush=True,
            )
        if state["step"] % 50 == 0:
            log.writerow(
                [
                    state["step"],
                    round(state["elapsed_s"], 1),
                    round(state["samples"] / len(train_items), 2),
                    f"{lr:.3e}",
                    round(running, 4),
                ]
            )
            log_f.flush()
        if state["elapsed_s"] - last_ckpt >= args.ckpt_minutes * 60:
            last_ckpt = state["elapsed_s"]
            model.eval()
            validate()
            model.train()
    model.eval()
    validate()
    log_f.close()
    summary = {
        "config": args.config,
        "model_config": cfg.to_dict(),
        "params": n_params,
        "steps": state["step"],
        "epochs": round(state["samples"] / len(train_items), 2),
        "elapsed_s": round(state["elapsed_s"], 1),
        "final_val_iou": state["last_iou"],
        "best_val_iou": state["best_iou"],
        "best_step": state["best_step"],
        "select": args.select,
        "final_gate": state["last_gate"],
        "best_gate": state["best_gate"],
        "sample_kinds": sampler.kinds,
        "init": str(args.init) if args.init else None,
        "phases": [
            {"from_step": ph["from_step"], "command": command_line(ph["args"])}
            for ph in state["phases"]
        ],
        "device": device,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "train_images": [str(p[0]) for p in train_pairs],
        "command": "python -m pipelines.reference.train " + " ".join(sys.argv[1:]),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    train(parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
