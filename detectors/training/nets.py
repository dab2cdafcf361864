"""The two small networks: a CTC strip reader and a CenterNet-style plate detector.

Both are sized for one CPU core at run time (about 30 M multiply-adds per
plate strip, about 215 M per 640x384 frame) and export to ONNX with their input
normalisation inside, so the runtime passes plain ``float32`` pixels in [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # CTC class i+1; class 0 is the blank
LAYOUT_NAMES = ("one_line", "two_line", "motorbike")


def _conv(
    cin: int, cout: int, kernel: int | tuple[int, int] = 3, stride: int = 1, padding=1
) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _separable(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False),
        nn.BatchNorm2d(cin),
        nn.ReLU(inplace=True),
        nn.Conv2d(cin, cout, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class StripReader(nn.Module):
    """``(N, 1, 32, 192)`` grey strip in [0, 1] -> ``(N, 48, 37)`` per-column class probabilities."""

    def __init__(self, classes: int = len(ALPHABET) + 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(1, 16),
            nn.MaxPool2d(2),  # 16 x 96
            _conv(16, 32),
            nn.MaxPool2d(2),  # 8 x 48
            _conv(32, 48),
            _conv(48, 48),
            nn.MaxPool2d((2, 1)),  # 4 x 48
            _conv(48, 64),
            nn.MaxPool2d((2, 1)),  # 2 x 48
            _conv(64, 96, kernel=(2, 3), padding=(0, 1)),  # 1 x 48
            _conv(96, 96, kernel=(1, 5), padding=(0, 2)),
            nn.Conv2d(96, classes, 1),
        )

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) / (std + 0.02)
        return self.body(x).squeeze(2).permute(0, 2, 1)  # (N, T, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x), dim=-1)


class PlateDetector(nn.Module):
    """``(N, 3, H, W)`` BGR in [0, 1] -> ``(N, 12, H / 4, W / 4)``: heat, 8 corner offsets, 3 layout logits.

    H and W must be multiples of 32. Trained on 512x288 frames, run on 640x384.

    Heat is a sigmoid probability of a plate centre in the cell; corner offsets are
    relative to the cell centre in units of 16 input pixels.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            _conv(3, 16, stride=2), _separable(16, 32, stride=2), _separable(32, 32)
        )  # /4
        self.down8 = nn.Sequential(_separable(32, 64, stride=2), _separable(64, 64))  # /8
        self.down16 = nn.Sequential(
            _separable(64, 96, stride=2), _separable(96, 96), _separable(96, 96)
        )  # /16
        self.lat8 = nn.Conv2d(64, 64, 1)
        self.top16 = nn.Conv2d(96, 64, 1)
        self.fuse8 = _separable(64, 64)
        self.lat4 = nn.Conv2d(32, 32, 1)
        self.top8 = nn.Conv2d(64, 32, 1)
        self.fuse4 = _separable(32, 32)
        self.head = nn.Sequential(_conv(32, 32, kernel=1, padding=0), nn.Conv2d(32, 12, 1))
        nn.init.constant_(self.head[-1].bias[:1], -4.0)

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        f4 = self.stem(x - 0.5)
        f8 = self.down8(f4)
        f16 = self.down16(f8)
        p8 = self.fuse8(self.lat8(f8) + nn.functional.interpolate(self.top16(f16), scale_factor=2.0))
        p4 = self.fuse4(self.lat4(f4) + nn.functional.interpolate(self.top8(p8), scale_factor=2.0))
        return self.head(p4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.raw(x)
        return torch.cat((torch.sigmoid(out[:, :1]), out[:, 1:]), dim=1)


class CornerRefiner(nn.Module):
    """``(N, 1, 64, 128)`` grey view around a rough plate quad -> ``(N, 8)`` corners in [0, 1] view units.

    The view maps the rough quad onto the inner rectangle of the canvas (see
    ``detectors.geometry.refine_view``); the network says where the true corners are.
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(1, 16, stride=2),  # 32 x 64
            _conv(16, 16),
            _conv(16, 32, stride=2),  # 16 x 32
            _conv(32, 32),
            _conv(32, 48, stride=2),  # 8 x 16
            _conv(48, 64, stride=2),  # 4 x 8
            _conv(64, 96, stride=2),  # 2 x 4
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(96 * 2 * 4, 128), nn.ReLU(inplace=True), nn.Linear(128, 8)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True)
        return self.head(self.body((x - mean) / (std + 0.02)))
