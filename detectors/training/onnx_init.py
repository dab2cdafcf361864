"""Start fine-tuning from the shipped ONNX models when no torch checkpoint is at hand.

The exported graphs have each BatchNorm folded into the convolution before it
(weights scaled, a bias added), so the torch checkpoint is not needed to keep
training: the folded weights go into the convolutions and each BatchNorm is set
to statistics measured on a calibration batch, with an affine part that undoes
them. The network then computes the same function as the ONNX model in eval mode
and (up to batch noise) in train mode, and fine-tuning starts from there instead
of from scratch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

_Layer = tuple[str, np.ndarray, np.ndarray | None]


def _onnx_weights(path: Path) -> tuple[list[_Layer], dict[str, np.ndarray]]:
    """``(weight name, weight, bias)`` of each Conv and Gemm in graph order, and every initializer by name."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    init = {i.name: np.array(numpy_helper.to_array(i)) for i in model.graph.initializer}
    layers = []
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm"):
            weight = init[node.input[1]]
            bias = init[node.input[2]] if len(node.input) > 2 and node.input[2] in init else None
            layers.append((node.input[1], weight, bias))
    return layers, init


def _pairs(model: nn.Module) -> list[tuple[nn.Module, nn.BatchNorm2d | None]]:
    """Each Conv2d / Linear of ``model`` in registration order, with the BatchNorm that follows it."""
    modules = list(model.modules())
    pairs = []
    for index, module in enumerate(modules):
        if isinstance(module, nn.Conv2d | nn.Linear):
            following = modules[index + 1] if index + 1 < len(modules) else None
            pairs.append((module, following if isinstance(following, nn.BatchNorm2d) else None))
    return pairs


def load_folded(model: nn.Module, path: Path, calibration: torch.Tensor) -> None:
    """Load the folded ONNX weights at ``path`` into ``model`` (same architecture), unfolding BatchNorm.

    Named layers (those without BatchNorm, whose ONNX initializers keep their torch
    names) are matched by name; folded convolutions are matched in order, which is
    the order in which they appear in the graph. ``calibration`` is a batch of
    typical inputs used to measure the statistics the BatchNorms are given.
    """
    layers, init = _onnx_weights(path)
    names = {id(m): n for n, m in model.named_modules()}
    anonymous = [(weight, bias) for name, weight, bias in layers if name.startswith("onnx::")]
    pending = iter(anonymous)
    folded: list[tuple[nn.Module, nn.BatchNorm2d, np.ndarray]] = []
    with torch.no_grad():
        for module, norm in _pairs(model):
            name = names[id(module)]
            if f"{name}.weight" in init and norm is None:
                module.weight.copy_(torch.from_numpy(init[f"{name}.weight"]))
                if module.bias is not None:
                    module.bias.copy_(torch.from_numpy(init[f"{name}.bias"]))
                continue
            weight, bias = next(pending)
            if tuple(weight.shape) != tuple(module.weight.shape):
                expected = tuple(module.weight.shape)
                raise ValueError(f"{name}: ONNX weight {weight.shape} does not fit {expected}")
            module.weight.copy_(torch.from_numpy(weight))
            if norm is None:
                module.bias.copy_(torch.from_numpy(bias))
                continue
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)
            norm.weight.fill_(1.0)
            norm.bias.copy_(torch.from_numpy(bias))
            folded.append((module, norm, bias))
    if next(pending, None) is not None:
        raise ValueError(f"{path.name} has more folded layers than the torch model")
    _measure_statistics(model, folded, calibration)


def _measure_statistics(
    model: nn.Module, folded: list[tuple[nn.Module, nn.BatchNorm2d, np.ndarray]], batch: torch.Tensor
) -> None:
    """Set each unfolded BatchNorm to its conv's output statistics on ``batch``; its affine undoes them."""
    stats: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def hook(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        stats[id(module)] = (output.mean(dim=(0, 2, 3)), output.var(dim=(0, 2, 3), unbiased=False))

    handles = [conv.register_forward_hook(hook) for conv, _, _ in folded]
    model.eval()
    with torch.no_grad():
        model(batch)
        for conv, norm, bias in folded:
            mean, var = stats[id(conv)]
            norm.running_mean.copy_(mean)
            norm.running_var.copy_(var)
            norm.weight.copy_(torch.sqrt(var + norm.eps))
            norm.bias.copy_(mean + torch.from_numpy(bias))
    for handle in handles:
        handle.remove()
    model.train()


def resume(model: nn.Module, checkpoint: Path, shipped: Path, calibration: torch.Tensor) -> str:
    """Fine-tuning start: the torch ``checkpoint`` if there is one, else the shipped ONNX model."""
    if checkpoint.exists():
        model.load_state_dict(torch.load(checkpoint, map_location="cpu"))
        return str(checkpoint)
    load_folded(model, shipped, calibration)
    return str(shipped)


def save_checkpoint(model: nn.Module, checkpoint: Path) -> None:
    """Save the weights as CPU tensors, so a checkpoint written on a GPU resumes anywhere."""
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    torch.save({name: value.cpu() for name, value in model.state_dict().items()}, checkpoint)


def replace_atomically(write: Callable[[Path], None], path: Path) -> None:
    """Call ``write`` on a temporary name next to ``path``, then rename it over ``path``.

    Tests and benchmarks may load the models while training exports, so they must
    never see a half-written file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    write(temporary)
    os.replace(temporary, path)
