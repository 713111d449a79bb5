"""Reference subject-lifting network (plain torch, no torchvision/timm).

Follows the published Apple "subject lifting" design at a CPU-trainable scale:

* an EfficientNetV2-style encoder: Fused-MBConv blocks in the high-resolution stages (a dense 3x3
  conv is faster than depthwise+pointwise when channels are few), MBConv with squeeze-excitation
  later; ``width_mult`` / ``depth_mult`` scale channels and block counts;
* a convolutional FPN/U-Net-like decoder fusing the stride 4/8/16/32 features top-down;
* a global branch from the terminal encoder feature (global pool + MLP) that predicts a channel-wise
  affine (scale, shift) applied to the decoded channels as ``decoded * (1 + scale) + shift`` —
  image-level context modulating a local decoder;
* a scalar "salient subject present" confidence logit from the same pooled feature.

The forward takes the 512x512 contract input (ImageNet-normalised RGB) and may internally work at a
lower ``work_size`` to keep CPU cost low; the alpha is upsampled back to the input size. All control
flow depends only on static shapes, so ``torch.export.export`` traces it without guards on data.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

# (block kind, expand ratio, out channels, layers, stride) at width/depth multiplier 1.0. A
# scaled-down EfficientNetV2-S stage table: a from-scratch model on ~700 images and a 2-core CPU
# cannot use 21 M parameters, so stage widths/depths are roughly halved before the multipliers
# apply.
STAGES: tuple[tuple[str, int, int, int, int], ...] = (
    ("fused", 1, 24, 1, 1),  # stride 2
    ("fused", 4, 48, 2, 2),  # stride 4
    ("fused", 4, 64, 2, 2),  # stride 8
    ("mb", 4, 128, 3, 2),  # stride 16
    ("mb", 6, 160, 3, 1),  # stride 16
    ("mb", 6, 256, 4, 2),  # stride 32
)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture hyper-parameters; stored in checkpoints so export rebuilds the same network."""

    width_mult: float = 0.5
    depth_mult: float = 0.5
    work_size: int = 256
    decoder_channels: int = 48
    stem_channels: int = 24
    mlp_hidden: int = 128
    stages: tuple[tuple[str, int, int, int, int], ...] = field(default=STAGES)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        d = dict(d)
        if "stages" in d:
            d["stages"] = tuple(tuple(s) for s in d["stages"])
        return cls(**d)


CONFIGS: dict[str, ModelConfig] = {
    # 1.0.0 demo candidate: fewer channels, trained for a shorter budget.
    # ~0.37 M params, ~0.2 s per batch-16 step at 256 on 2 CPU threads (measured).
    "small": ModelConfig(width_mult=0.35, depth_mult=0.34, work_size=256, decoder_channels=32),
    # 1.1.0: the better candidate. ~1.55 M params (~6 MB .pt2), ~0.5 s per batch-16 step at 256 on 2
    # threads with channels_last (measured; width/depth 0.75 took 1.1 s: too few steps in 110 min).
    "base": ModelConfig(width_mult=0.75, depth_mult=0.5, work_size=256, decoder_channels=48),
}


def _ch(c: float, divisor: int = 8) -> int:
    """Round channels to a multiple of 8 (kernel-friendly), never dropping more than 10 %."""
    v = max(divisor, int(c + divisor / 2) // divisor * divisor)
    return v + divisor if v < 0.9 * c else v


class ConvBNAct(nn.Sequential):
    """Conv + BatchNorm (+ SiLU): BatchNorm keeps from-scratch training at batch ~16 stable."""

    def __init__(
        self, cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1, act: bool = True
    ):
        super().__init__(
            nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.SiLU(inplace=True) if act else nn.Identity(),
        )


class SqueezeExcite(nn.Module):
    """Channel attention from the globally pooled feature (EfficientNet SE, 0.25 of the input)."""

    def __init__(self, ch: int, squeeze: int):
        super().__init__()
        self.reduce = nn.Conv2d(ch, squeeze, 1)
        self.expand = nn.Conv2d(squeeze, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.expand(F.silu(self.reduce(s))))


class FusedMBConv(nn.Module):
    """Fused-MBConv: one dense 3x3 expand conv + 1x1 project; residual when shapes allow."""

    def __init__(self, cin: int, cout: int, expand: int, stride: int):
        super().__init__()
        mid = cin * expand
        self.residual = stride == 1 and cin == cout
        if expand == 1:
            self.block: nn.Module = ConvBNAct(cin, cout, 3, stride)
        else:
            self.block = nn.Sequential(
                ConvBNAct(cin, mid, 3, stride), ConvBNAct(mid, cout, 1, act=False)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


class MBConv(nn.Module):
    """MBConv: 1x1 expand, depthwise 3x3, squeeze-excitation, 1x1 project; residual if possible."""

    def __init__(self, cin: int, cout: int, expand: int, stride: int):
        super().__init__()
        mid = cin * expand
        self.residual = stride == 1 and cin == cout
        self.block = nn.Sequential(
            ConvBNAct(cin, mid, 1),
            ConvBNAct(mid, mid, 3, stride, groups=mid),
            SqueezeExcite(mid, max(8, cin // 4)),
            ConvBNAct(mid, cout, 1, act=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


class Encoder(nn.Module):
    """EfficientNetV2-style backbone returning the last feature of each stride (4, 8, 16, 32)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        stem = _ch(cfg.stem_channels * cfg.width_mult)
        self.stem = ConvBNAct(3, stem, 3, 2)
        self.stages = nn.ModuleList()
        self.out_channels: list[int] = []
        self.tap: list[
            bool
        ] = []  # whether a stage's output is a decoder input (last stage of a stride)
        cin, stride_total = stem, 2
        strides: list[int] = []
        for kind, expand, c, n, s in cfg.stages:
            cout = _ch(c * cfg.width_mult)
            reps = max(1, math.ceil(n * cfg.depth_mult))
            block = FusedMBConv if kind == "fused" else MBConv
            layers = [
                block(cin if i == 0 else cout, cout, expand, s if i == 0 else 1)
                for i in range(reps)
            ]
            self.stages.append(nn.Sequential(*layers))
            stride_total *= s
            strides.append(stride_total)
            self.out_channels.append(cout)
            cin = cout
        self.tap = [
            s >= 4 and (i + 1 == len(strides) or strides[i + 1] != s) for i, s in enumerate(strides)
        ]
        self.out_channels = [c for c, t in zip(self.out_channels, self.tap, strict=True) if t]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        feats = []
        for stage, tap in zip(self.stages, self.tap, strict=True):
            x = stage(x)
            if tap:
                feats.append(x)
        return feats


class SubjectLiftNet(nn.Module):
    """Encoder + FPN decoder + global affine/confidence branches; see the module docstring."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.decoder_channels
        self.encoder = Encoder(cfg)
        chans = self.encoder.out_channels  # strides 4, 8, 16, 32
        self.lateral = nn.ModuleList(ConvBNAct(c, d, 1) for c in chans)
        # Depthwise-separable smoothing after each top-down merge: cheap on CPU at stride 4.
        self.smooth = nn.ModuleList(
            nn.Sequential(ConvBNAct(d, d, 3, groups=d), ConvBNAct(d, d, 1)) for _ in chans[:-1]
        )
        top = chans[-1]
        self.global_mlp = nn.Sequential(nn.Linear(top, cfg.mlp_hidden), nn.SiLU(inplace=True))
        self.affine = nn.Linear(cfg.mlp_hidden, 2 * d)
        # Zero-init: the affine starts as the identity, so the branch can only help as it learns.
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)
        self.confidence = nn.Linear(cfg.mlp_hidden, 1)
        self.head = nn.Sequential(ConvBNAct(d, d, 3), nn.Conv2d(d, 1, 1))

    def decode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (decoded stride-4 features before the affine, pooled global embedding)."""
        feats = self.encoder(x)
        y = self.lateral[-1](feats[-1])
        for i in range(len(feats) - 2, -1, -1):
            lat = self.lateral[i](feats[i])
            y = F.interpolate(y, size=lat.shape[-2:], mode="bilinear", align_corners=False) + lat
            y = self.smooth[i](y)
        g = self.global_mlp(feats[-1].mean((2, 3)))
        return y, g

    def modulate(self, decoded: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Channel-wise affine from the global branch: decoded * (1 + scale) + shift."""
        scale, shift = self.affine(g).chunk(2, dim=1)
        return decoded * (1 + scale[:, :, None, None]) + shift[:, :, None, None]

    def forward_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Alpha logits at input size and the confidence logit; training uses these (stable BCE)."""
        size = x.shape[-2:]
        ws = self.cfg.work_size
        if size[0] != ws or size[1] != ws:  # static shape check only: export-safe
            # 512 -> 256 bilinear (align_corners=False) is an exact 2x2 box filter, i.e. it matches
            # INTER_AREA resize the training pipeline uses.
            x = F.interpolate(x, size=(ws, ws), mode="bilinear", align_corners=False)
        decoded, g = self.decode(x)
        logits = self.head(self.modulate(decoded, g))
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits, self.confidence(g).squeeze(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha N×1×H×W probability in [0, 1], confidence logit N) — the exported contract."""
        logits, conf = self.forward_logits(x)
        return torch.sigmoid(logits), conf


def build_model(cfg: ModelConfig | str) -> SubjectLiftNet:
    """Build from a config or a named preset ('small', 'base')."""
    return SubjectLiftNet(CONFIGS[cfg] if isinstance(cfg, str) else cfg)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
