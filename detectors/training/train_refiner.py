"""Train the corner refiner and export ``models/refiner.onnx``.

    nice -n 10 .venv/bin/python -m detectors.training.train_refiner [--minutes 8]

The detector places corners on a coarse grid; the refiner looks at the plate at
reading resolution and moves them onto the plate's real edges, which the reader
needs. Deterministic data (``data.refiner_set``), time-bounded training, export
after every epoch.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from detectors.geometry import REFINE_SIZE
from detectors.recognizer import MODELS_DIR
from detectors.training.data import CACHE, refiner_set
from detectors.training.nets import CornerRefiner
from detectors.training.onnx_init import replace_atomically, resume, save_checkpoint
from detectors.training.options import start_run, training_parser
from detectors.training.schedule import CosineOverTime

logger = logging.getLogger(__name__)


def export(model: CornerRefiner, path: Path) -> None:
    """Write the ONNX refiner to ``path`` atomically (a running recogniser may be loading it)."""
    model.eval()
    dummy = torch.zeros(1, 1, REFINE_SIZE[1], REFINE_SIZE[0], device=next(model.parameters()).device)
    replace_atomically(lambda target: torch.onnx.export(
        model, dummy, str(target), input_names=["view"],
        output_names=["corners"], dynamic_axes={"view": {0: "n"}, "corners": {0: "n"}}, opset_version=17,
        dynamo=False,
    ), path)  # fmt: skip
    model.train()


def pixel_error(model: CornerRefiner, data: dict[str, np.ndarray]) -> float:
    """Mean corner error in view pixels."""
    model.eval()
    with torch.no_grad():
        views = torch.from_numpy(data["views"]).float().unsqueeze(1) / 255.0
        predicted = model(views.to(next(model.parameters()).device)).cpu().numpy().reshape(-1, 4, 2)
    model.train()
    truth = data["corners"].reshape(-1, 4, 2)
    return float(np.linalg.norm((predicted - truth) * np.array(REFINE_SIZE), axis=-1).mean())


def main(argv: list[str] | None = None) -> None:
    parser = training_parser(__doc__, model="refiner", minutes=8.0, seeds=[31], lr=2e-3, batch=128)
    parser.add_argument("--samples", type=int, default=12000)
    args = parser.parse_args(argv)
    device = start_run(args)
    sets = [refiner_set(args.samples, seed=seed, style="train", workers=args.workers) for seed in args.seeds]
    train = {key: np.concatenate([part[key] for part in sets]) for key in ("views", "corners")}
    val = refiner_set(1000, seed=34, style="train", workers=args.workers)
    logger.info("before training: %.2f px", float(np.linalg.norm(
        (val["corners"].reshape(-1, 4, 2) - np.array([[0.2, 0.25], [0.8, 0.25], [0.8, 0.75], [0.2, 0.75]]))
        * np.array(REFINE_SIZE), axis=-1).mean()))  # fmt: skip
    model = CornerRefiner()
    if args.resume:
        calibration = torch.from_numpy(train["views"][:512]).float().unsqueeze(1) / 255.0
        start = resume(model, CACHE / "refiner.pt", MODELS_DIR / "refiner.onnx", calibration)
        logger.info("fine-tuning from %s: %.2f px", start, pixel_error(model, val))
    model.to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    generator = torch.Generator(device=device).manual_seed(0)
    budget_s = args.minutes * 60
    started = time.monotonic()
    schedule = CosineOverTime(optimiser, args.lr, budget_s)
    step, batch_size = 0, args.batch
    while time.monotonic() - started < budget_s:
        order = torch.randperm(len(train["views"]), generator=generator, device=device).cpu().numpy()
        for start in range(0, len(order) - batch_size + 1, batch_size):
            elapsed = time.monotonic() - started
            if elapsed > budget_s:
                break
            schedule.update(step, elapsed)
            idx = order[start : start + batch_size]
            views = torch.from_numpy(train["views"][idx]).to(device).float().unsqueeze(1) / 255.0
            gain = torch.empty(len(idx), 1, 1, 1, device=device).uniform_(0.7, 1.3, generator=generator)
            noise = torch.randn(views.shape, generator=generator, device=device) * 0.02
            views = (views * gain + noise).clamp(0, 1)
            target = torch.from_numpy(train["corners"][idx]).to(device)
            loss = nn.functional.smooth_l1_loss(model(views), target, beta=0.01)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            step += 1
            if step % 100 == 0:
                logger.info("step %d loss %.4f (%.0fs)", step, loss.item(), time.monotonic() - started)
        save_checkpoint(model, CACHE / "refiner.pt")
        export(model, args.out / "refiner.onnx")
        logger.info("epoch done at step %d: validation error %.2f px", step, pixel_error(model, val))


if __name__ == "__main__":
    main()
