"""Command-line options shared by the training scripts."""

from __future__ import annotations

import argparse


def add_hardware_arguments(parser: argparse.ArgumentParser, *, batch: int) -> None:
    """``--device``, ``--workers`` and ``--batch``, shared by the training scripts.

    The defaults train on this machine's CPU as the recipes in ``detectors/README.md``
    did; on a GPU, data generation (``--workers`` processes) is what bounds a run.
    """
    parser.add_argument("--device", default="cpu", help="torch device to train on, e.g. cuda")
    parser.add_argument("--workers", type=int, default=2, help="processes that generate the data sets")
    parser.add_argument("--batch", type=int, default=batch, help="training batch size")
