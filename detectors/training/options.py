"""What every training script takes on its command line, and how each run starts."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from detectors.recognizer import MODELS_DIR


def training_parser(
    description: str | None, *, model: str, minutes: float, seeds: list[int], lr: float, batch: int
) -> argparse.ArgumentParser:
    """The options the training scripts share; ``model`` names the ONNX file a script exports.

    ``--device``, ``--workers`` and ``--batch`` default to this machine's CPU as the recipes in
    ``detectors/README.md`` did; on a GPU, data generation (``--workers`` processes) is what
    bounds a run.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--minutes", type=float, default=minutes)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--resume", action="store_true",
                        help="fine-tune: start from the last checkpoint, else from the shipped ONNX model")
    parser.add_argument("--seeds", type=int, nargs="+", default=seeds, help="data seeds (sets are joined)")
    parser.add_argument("--out", type=Path, default=MODELS_DIR, help=f"folder to export {model}.onnx into")
    parser.add_argument("--lr", type=float, default=lr, help="peak learning rate (lower to fine-tune)")
    parser.add_argument("--device", default="cpu", help="torch device to train on, e.g. cuda")
    parser.add_argument("--workers", type=int, default=2, help="processes that generate the data sets")
    parser.add_argument("--batch", type=int, default=batch, help="training batch size")
    return parser


def start_run(args: argparse.Namespace) -> torch.device:
    """Logging, the seed and the thread count every run starts with; the device to train on."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    return torch.device(args.device)
