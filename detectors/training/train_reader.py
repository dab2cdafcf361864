"""Train the CTC strip reader on synthetic plate strips and export ``models/reader.onnx``.

    nice -n 10 .venv/bin/python -m detectors.training.train_reader [--minutes 15]

Deterministic data (fixed seeds, see ``data.reader_set``); the run is bounded by
``--minutes`` and exports after every epoch, so a cut-short run still leaves a
usable model.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from detectors.recognizer import MODELS_DIR
from detectors.training.data import CACHE, reader_set
from detectors.training.nets import ALPHABET, StripReader
from detectors.training.onnx_init import replace_atomically, resume, save_checkpoint
from detectors.training.options import start_run, training_parser
from detectors.training.schedule import CosineOverTime

logger = logging.getLogger(__name__)

_INDEX = {ch: i + 1 for i, ch in enumerate(ALPHABET)}


def encode_texts(texts: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    flat = [_INDEX[ch] for text in texts for ch in str(text)]
    lengths = [len(str(text)) for text in texts]
    return torch.tensor(flat, dtype=torch.long), torch.tensor(lengths, dtype=torch.long)


def greedy(probs: np.ndarray) -> list[str]:
    """Best-path CTC decoding of ``(N, T, C)`` probabilities (for monitoring only)."""
    best = probs.argmax(axis=-1)
    out = []
    for row in best:
        chars, previous = [], 0
        for label in row:
            if label != previous and label != 0:
                chars.append(ALPHABET[label - 1])
            previous = label
        out.append("".join(chars))
    return out


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Photometric and small geometric changes on ``(N, 1, 32, 192)`` strips in [0, 1].

    Beyond gain, bias and noise: a random gamma (cameras differ in tone curves),
    loss of resolution (strips upscaled from a few pixels of a far plate) and a
    light blur, so the reader does not rely on the renderer's exact sharpness.
    """
    n, device = batch.shape[0], batch.device
    per_strip = (n, 1, 1, 1)
    gamma = torch.exp(torch.empty(per_strip, device=device).uniform_(-0.5, 0.5, generator=generator))
    batch = batch.clamp(1e-3, 1) ** gamma
    gain = torch.empty(per_strip, device=device).uniform_(0.6, 1.4, generator=generator)
    bias = torch.empty(per_strip, device=device).uniform_(-0.2, 0.2, generator=generator)
    batch = batch * gain + bias
    flip = torch.rand(per_strip, generator=generator, device=device) < 0.15  # dark-on-light and light-on-dark
    batch = torch.where(flip, 1.0 - batch, batch)
    batch = _resolution_loss(_warp(batch, generator), generator)
    noise = torch.empty(per_strip, device=device).uniform_(0.0, 0.06, generator=generator)
    batch = batch + torch.randn(batch.shape, generator=generator, device=device) * noise
    shift = int(torch.randint(-3, 4, (1,), generator=generator, device=device))
    if shift:
        batch = torch.roll(batch, shifts=shift, dims=3)
    stroke = float(torch.rand(1, generator=generator, device=device))
    if stroke < 0.15:  # thicker or thinner strokes: lettering weights the fonts do not have
        batch = nn.functional.max_pool2d(batch, (3, 3), stride=1, padding=1)
    elif stroke < 0.3:
        batch = -nn.functional.max_pool2d(-batch, (3, 3), stride=1, padding=1)
    return batch.clamp(0, 1)


def _warp(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random per-strip shear, stretch and shift: lettering slants and widths the fonts do not have,
    and the small rectification errors that corner refinement leaves."""
    n, device = batch.shape[0], batch.device
    theta = torch.zeros(n, 2, 3, device=device)
    theta[:, 0, 0] = torch.empty(n, device=device).uniform_(0.92, 1.08, generator=generator)
    theta[:, 1, 1] = torch.empty(n, device=device).uniform_(0.9, 1.1, generator=generator)
    theta[:, 0, 1] = torch.empty(n, device=device).uniform_(-0.03, 0.03, generator=generator)  # slant
    theta[:, 1, 0] = torch.empty(n, device=device).uniform_(-0.04, 0.04, generator=generator)  # a slight roll
    theta[:, 1, 2] = torch.empty(n, device=device).uniform_(-0.06, 0.06, generator=generator)
    keep = torch.rand(n, generator=generator, device=device) < 0.4
    theta[keep] = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], device=device)
    grid = nn.functional.affine_grid(theta, list(batch.shape), align_corners=False)
    return nn.functional.grid_sample(batch, grid, padding_mode="border", align_corners=False)


def _resolution_loss(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Down- and up-sample a random part of the batch, or blur it: far and out-of-focus plates."""
    kind = float(torch.rand(1, generator=generator, device=batch.device))
    if kind < 0.25:
        factor = float(torch.empty(1, device=batch.device).uniform_(0.35, 0.75, generator=generator))
        size = (max(int(32 * factor), 8), max(int(192 * factor), 48))
        small = nn.functional.interpolate(batch, size=size, mode="area")
        return nn.functional.interpolate(small, size=batch.shape[2:], mode="bilinear", align_corners=False)
    if kind < 0.4:
        kernel = torch.tensor([1.0, 2.0, 1.0], device=batch.device) / 4
        kernel = (kernel[:, None] * kernel[None, :]).view(1, 1, 3, 3)
        return nn.functional.conv2d(nn.functional.pad(batch, (1, 1, 1, 1), mode="replicate"), kernel)
    return batch


def evaluate(model: StripReader, data: dict[str, np.ndarray]) -> float:
    model.eval()
    device = next(model.parameters()).device
    hits = 0
    with torch.no_grad():
        for start in range(0, len(data["strips"]), 512):
            strips = torch.from_numpy(data["strips"][start : start + 512]).to(device).float() / 255.0
            strips = strips.unsqueeze(1)
            predicted = greedy(model(strips).cpu().numpy())
            hits += sum(
                p == str(t) for p, t in zip(predicted, data["texts"][start : start + 512], strict=True)
            )
    model.train()
    return hits / len(data["strips"])


def export(model: StripReader, path: Path) -> None:
    """Write the ONNX reader to ``path`` atomically (a running recogniser may be loading it)."""
    model.eval()
    dummy = torch.zeros(1, 1, 32, 192, device=next(model.parameters()).device)
    replace_atomically(lambda target: torch.onnx.export(
        model, dummy, str(target), input_names=["strip"], output_names=["probs"],
        dynamic_axes={"strip": {0: "n"}, "probs": {0: "n"}}, opset_version=17, dynamo=False,
    ), path)  # fmt: skip
    model.train()


def main(argv: list[str] | None = None) -> None:
    parser = training_parser(__doc__, model="reader", minutes=15.0, seeds=[1], lr=3e-3, batch=128)
    parser.add_argument("--samples", type=int, default=40000)
    args = parser.parse_args(argv)
    device = start_run(args)
    sets = [reader_set(args.samples, seed=seed, style="train", workers=args.workers) for seed in args.seeds]
    train = {key: np.concatenate([part[key] for part in sets]) for key in ("strips", "texts")}
    val = reader_set(4000, seed=2, style="train", workers=args.workers)
    test = reader_set(3000, seed=3, style="test", workers=args.workers)
    model = StripReader()
    checkpoint = CACHE / "reader.pt"
    if args.resume:
        calibration = torch.from_numpy(train["strips"][:512]).float().unsqueeze(1) / 255.0
        logger.info("fine-tuning from %s", resume(model, checkpoint, MODELS_DIR / "reader.onnx", calibration))
    model.to(device)
    if args.resume:
        logger.info("start: val %.4f test %.4f", evaluate(model, val), evaluate(model, test))
    batch_size = args.batch
    steps_per_epoch = len(train["strips"]) // batch_size
    budget_s = args.minutes * 60
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    generator = torch.Generator(device=device).manual_seed(0)
    started = time.monotonic()
    schedule = CosineOverTime(optimiser, args.lr, budget_s)
    step, epoch = 0, 0
    while time.monotonic() - started < budget_s:
        order = torch.randperm(len(train["strips"]), generator=generator, device=device).cpu().numpy()
        for batch_index in range(steps_per_epoch):
            elapsed = time.monotonic() - started
            if elapsed > budget_s:
                break
            schedule.update(step, elapsed)
            idx = order[batch_index * batch_size : (batch_index + 1) * batch_size]
            strips = torch.from_numpy(train["strips"][idx]).to(device).float().unsqueeze(1) / 255.0
            strips = augment(strips, generator)
            targets, lengths = encode_texts(train["texts"][idx])
            log_probs = torch.log_softmax(model.logits(strips), dim=-1).permute(1, 0, 2)
            input_lengths = torch.full((len(idx),), log_probs.shape[0], dtype=torch.long)
            loss = ctc(log_probs, targets.to(device), input_lengths.to(device), lengths.to(device))
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimiser.step()
            step += 1
            if step % 100 == 0:
                logger.info("step %d loss %.4f (%.0fs)", step, loss.item(), time.monotonic() - started)
        epoch += 1
        save_checkpoint(model, checkpoint)
        export(model, args.out / "reader.onnx")
        logger.info("epoch %d: val %.4f test %.4f", epoch, evaluate(model, val), evaluate(model, test))


if __name__ == "__main__":
    main()
