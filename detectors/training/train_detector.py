"""Train the plate detector on synthetic 512x288 frames and export ``models/detector.onnx``.

    nice -n 10 .venv/bin/python -m detectors.training.train_detector [--minutes 15]

A CenterNet-style target: a Gaussian peak at each plate centre on the stride-4
grid, the four corners as offsets from the cell centre, and the layout class.
Training runs on random 256x160 windows of the frames (the network is fully
convolutional) and is bounded by ``--minutes``; it exports after every epoch.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import time
from collections import deque
from collections.abc import Iterator
from multiprocessing.pool import Pool
from pathlib import Path

import numpy as np
import torch
from torch import nn

from detectors.recognizer import MODELS_DIR
from detectors.training.data import CACHE, DETECTOR_STRIDE, STREET_SHARE, detector_set
from detectors.training.nets import PlateDetector
from detectors.training.onnx_init import replace_atomically, resume, save_checkpoint
from detectors.training.options import start_run, training_parser
from detectors.training.schedule import CosineOverTime

logger = logging.getLogger(__name__)

CORNER_UNIT = 16.0
WINDOW = (256, 160)  # (width, height) of training windows


def targets(corners: np.ndarray, layouts: np.ndarray, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Heat ``(h, w)``, corner offsets ``(8, h, w)``, layout ``(h, w)`` (-1 ignore) and a regression mask."""
    width, height = size[0] // DETECTOR_STRIDE, size[1] // DETECTOR_STRIDE
    heat = np.zeros((height, width), np.float32)
    offsets = np.zeros((8, height, width), np.float32)
    layout = np.full((height, width), -1, np.int64)
    weight = np.zeros((height, width), np.float32)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    cell_x = (xs + 0.5) * DETECTOR_STRIDE
    cell_y = (ys + 0.5) * DETECTOR_STRIDE
    order = np.argsort([-np.ptp(c[:, 0]) for c in corners])  # big plates first, small ones on top
    for index in order[::-1]:
        quad, kind = corners[index], layouts[index]
        if kind < 0:
            continue
        centre = quad.mean(axis=0) / DETECTOR_STRIDE - 0.5
        extent = np.ptp(quad, axis=0) / DETECTOR_STRIDE
        sx, sy = max(extent[0] / 6, 0.7), max(extent[1] / 6, 0.7)
        gauss = np.exp(-((xs - centre[0]) ** 2) / (2 * sx**2) - ((ys - centre[1]) ** 2) / (2 * sy**2))
        cx, cy = int(round(centre[0])), int(round(centre[1]))
        if 0 <= cx < width and 0 <= cy < height:
            gauss[cy, cx] = 1.0
        heat = np.maximum(heat, gauss)
        region = gauss > 0.5
        if not region.any():
            continue
        for k in range(4):
            offsets[2 * k][region] = (quad[k, 0] - cell_x[region]) / CORNER_UNIT
            offsets[2 * k + 1][region] = (quad[k, 1] - cell_y[region]) / CORNER_UNIT
        layout[region] = kind
        weight[region] = gauss[region]
    return {"heat": heat, "offsets": offsets, "layout": layout, "weight": weight}


def sample_batch(data: dict, indices: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    images, heats, offsets, layouts, weights = [], [], [], [], []
    full_h, full_w = data["images"].shape[1:3]
    for i in indices:
        corners, kinds = data["corners"][i], data["layouts"][i]
        present = kinds >= 0
        if present.any() and rng.random() < 0.75:
            centre = corners[rng.choice(np.nonzero(present)[0])].mean(axis=0)
            x0 = int(np.clip(centre[0] - rng.uniform(0.15, 0.85) * WINDOW[0], 0, full_w - WINDOW[0]))
            y0 = int(np.clip(centre[1] - rng.uniform(0.15, 0.85) * WINDOW[1], 0, full_h - WINDOW[1]))
        else:
            x0 = int(rng.integers(0, full_w - WINDOW[0] + 1))
            y0 = int(rng.integers(0, full_h - WINDOW[1] + 1))
        x0 -= x0 % DETECTOR_STRIDE
        y0 -= y0 % DETECTOR_STRIDE
        image = data["images"][i, y0 : y0 + WINDOW[1], x0 : x0 + WINDOW[0]].astype(np.float32) / 255.0
        image = np.clip(_recolour(image, rng) * rng.uniform(0.7, 1.3) + rng.uniform(-0.15, 0.15), 0, 1)
        shifted = corners - np.array([x0, y0], np.float32)
        t = targets(shifted, kinds, WINDOW)
        images.append(image.transpose(2, 0, 1))
        heats.append(t["heat"])
        offsets.append(t["offsets"])
        layouts.append(t["layout"])
        weights.append(t["weight"])
    return {
        "images": np.stack(images),
        "heat": np.stack(heats),
        "offsets": np.stack(offsets),
        "layout": np.stack(layouts),
        "weight": np.stack(weights),
    }


_FRAMES: dict[str, np.ndarray] = {}  # the training set, shared with the batch workers by fork


def _batch_job(job: tuple[np.ndarray, int]) -> dict[str, np.ndarray]:
    indices, seed = job
    return sample_batch(_FRAMES, indices, np.random.default_rng(seed))


def prefetched_batches(pool: Pool, jobs: list[tuple[np.ndarray, int]], depth: int) -> Iterator[dict]:
    """The batches of ``jobs`` in order, at most ``depth`` being made ahead (they are large)."""
    pending: deque = deque()
    for job in jobs:
        pending.append(pool.apply_async(_batch_job, (job,)))
        if len(pending) >= depth:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def _recolour(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shuffle, tint or drop the colour channels of an ``(H, W, 3)`` window in [0, 1].

    Plates must be found by their shape and lettering, not by the handful of
    plate and vehicle colours the renderer uses: white balance, tinted light and
    plate colours all vary in real footage, and a detector that keys on colour
    misses a yellow plate on an unusual background.
    """
    if rng.random() < 0.5:
        image = image[:, :, rng.permutation(3)]
    if rng.random() < 0.15:
        image = np.repeat(image.mean(axis=2, keepdims=True), 3, axis=2)
    return image * rng.uniform(0.8, 1.2, 3).astype(np.float32)


def loss_terms(raw: torch.Tensor, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    heat = torch.sigmoid(raw[:, 0]).clamp(1e-4, 1 - 1e-4)
    target = batch["heat"]
    positive = target.eq(1.0).float()
    negative_weight = (1 - target) ** 4
    pos_loss = -(torch.log(heat) * (1 - heat) ** 2 * positive).sum()
    neg_loss = -(torch.log(1 - heat) * heat**2 * negative_weight * (1 - positive)).sum()
    focal = (pos_loss + neg_loss) / positive.sum().clamp(min=1.0)
    weight = batch["weight"]
    norm = weight.sum().clamp(min=1.0)
    corner = (nn.functional.smooth_l1_loss(raw[:, 1:9], batch["offsets"], reduction="none", beta=0.1)
              .sum(1) * weight).sum() / norm  # fmt: skip
    ce = nn.functional.cross_entropy(raw[:, 9:12], batch["layout"], ignore_index=-1, reduction="none")
    layout = (ce * weight).sum() / norm
    return focal, corner, layout


def export(model: PlateDetector, path: Path) -> None:
    """Write the ONNX detector to ``path`` atomically (a running recogniser may be loading it)."""
    model.eval()
    dummy = torch.zeros(1, 3, 288, 512, device=next(model.parameters()).device)
    replace_atomically(lambda target: torch.onnx.export(
        model, dummy, str(target), input_names=["image"], output_names=["maps"],
        dynamic_axes={"image": {2: "height", 3: "width"}, "maps": {2: "rows", 3: "columns"}},
        opset_version=17, dynamo=False,
    ), path)  # fmt: skip
    model.train()


def main(argv: list[str] | None = None) -> None:
    parser = training_parser(__doc__, model="NAME", minutes=15.0, seeds=[11], lr=2e-3, batch=32)
    parser.add_argument("--frames", type=int, default=4000)
    parser.add_argument("--street", type=float, default=0.0,
                        help=f"share of frames with a street's clutter ({STREET_SHARE} for the closer look's "
                             "detector)")  # fmt: skip
    parser.add_argument("--name", default="detector",
                        help="model name: exports NAME.onnx, checkpoints NAME.pt (street_detector: the "
                             "closer look's, fine-tuned from detector.onnx)")  # fmt: skip
    args = parser.parse_args(argv)
    device = start_run(args)
    sets = [detector_set(args.frames, seed=seed, style="train", workers=args.workers, street=args.street)
            for seed in args.seeds]
    _FRAMES.update(
        {key: np.concatenate([part[key] for part in sets]) for key in ("images", "corners", "layouts")}
    )
    # the batch workers fork before this process starts CUDA
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:
        model = PlateDetector()
        if args.resume:
            calibration = _FRAMES["images"][:8].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
            start = resume(
                model, CACHE / f"{args.name}.pt", MODELS_DIR / "detector.onnx", torch.from_numpy(calibration)
            )
            logger.info("fine-tuning from %s", start)
        fit(model.to(device), pool, args)


def fit(model: PlateDetector, pool: Pool, args: argparse.Namespace) -> None:
    """Train for ``args.minutes`` with a cosine learning rate; checkpoint and export every 300 steps."""
    device = next(model.parameters()).device
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    rng = np.random.default_rng(0)
    budget_s = args.minutes * 60
    started = time.monotonic()
    schedule = CosineOverTime(optimiser, args.lr, budget_s, pace_steps=30)
    step = 0
    n = len(_FRAMES["images"])
    while time.monotonic() - started < budget_s:
        order = rng.permutation(n)
        jobs = [(order[start : start + args.batch], int(rng.integers(2**63)))
                for start in range(0, n - args.batch + 1, args.batch)]  # fmt: skip
        for arrays in prefetched_batches(pool, jobs, depth=2 * args.workers):
            elapsed = time.monotonic() - started
            if elapsed > budget_s:
                break
            schedule.update(step, elapsed)
            batch = {key: torch.from_numpy(value).to(device) for key, value in arrays.items()}
            focal, corner, layout = loss_terms(model.raw(batch["images"]), batch)
            loss = focal + corner + 0.5 * layout
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimiser.step()
            step += 1
            if step % 50 == 0:
                logger.info("step %d focal %.3f corner %.3f layout %.3f (%.0fs)", step, focal.item(),
                            corner.item(), layout.item(), time.monotonic() - started)  # fmt: skip
            if step % 300 == 0:
                save_checkpoint(model, CACHE / f"{args.name}.pt")
                export(model, args.out / f"{args.name}.onnx")
        save_checkpoint(model, CACHE / f"{args.name}.pt")
        export(model, args.out / f"{args.name}.onnx")
        logger.info("epoch done at step %d", step)


if __name__ == "__main__":
    main()
