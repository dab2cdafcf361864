"""Reading a rectified plate strip: the CTC reader model and grammar-constrained decoding.

The decoder is a CTC prefix beam search in which a prefix may only grow by a
character its position allows in some plate template of
:data:`detectors.plate_format.TEMPLATES` (digits where digits go, series letters
where letters go), with a soft prior on known province codes. Scores are CTC
probabilities of whole plate strings (all alignments summed), which the
recogniser then calibrates.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detectors import plate_format
from detectors.plate_format import Layout

__all__ = ["ALPHABET", "Reading", "StripReader", "decode"]

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # CTC class i + 1; class 0 is the blank
_MIN_CHAR_PROB = 1e-3  # characters below this in a column are not considered there
_UNKNOWN_PROVINCE_PRIOR = 0.05


@dataclass(frozen=True)
class Reading:
    """Decoded plate strings, best first, with their CTC probabilities (not yet calibrated)."""

    texts: tuple[str, ...]
    scores: tuple[float, ...]


def _signature(char: str) -> str:
    if char == "0":
        return "0"
    if char.isdigit():
        return "9"
    return "L" if char in plate_format.SERIES_LETTERS else "X"


_ACCEPTS = {"D": "09", "N": "9", "L": "L", "A": "LX"}


@functools.lru_cache(maxsize=4096)
def _grammar(signature: str, two_row: bool) -> tuple[frozenset[str], bool]:
    """Characters allowed after a prefix with this class signature, and whether it may end there."""
    allowed: set[str] = set()
    can_end = False
    for template, layouts in plate_format.TEMPLATES:
        if not two_row and layouts == (Layout.MOTORBIKE,):
            continue
        if len(template) < len(signature):
            continue
        if any(sig not in _ACCEPTS[cls] for sig, cls in zip(signature, template, strict=False)):
            continue
        if len(template) == len(signature):
            can_end = True
        else:
            allowed.update(plate_format.CHARACTER_CLASSES[template[len(signature)]])
    return frozenset(allowed), can_end


def decode(probs: np.ndarray, *, two_row: bool, beam: int = 8, top: int = 5) -> Reading:
    """Grammar-constrained CTC prefix beam search over ``(T, 37)`` column probabilities.

    ``two_row`` allows motorbike shapes (two-row strips). Returns up to ``top``
    complete, valid plate strings with their probabilities, best first.
    """
    blank = probs[:, 0].astype(np.float64)
    chars = probs[:, 1:].astype(np.float64)
    beams: dict[str, tuple[float, float]] = {"": (1.0, 0.0)}
    for t in range(probs.shape[0]):
        column = chars[t]
        candidates = np.nonzero(column > _MIN_CHAR_PROB)[0]
        fresh: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for prefix, (p_blank, p_char) in beams.items():
            total = p_blank + p_char
            entry = fresh[prefix]
            entry[0] += total * blank[t]
            if prefix:
                entry[1] += p_char * column[ALPHABET.index(prefix[-1])]
            if not len(candidates):
                continue
            allowed, _ = _grammar("".join(_signature(c) for c in prefix), two_row)
            for index in candidates:
                char = ALPHABET[index]
                if char not in allowed:
                    continue
                extended = prefix + char
                prior = _province_prior(extended)
                p = column[index] * prior
                target = fresh[extended]
                target[1] += (p_blank if prefix and char == prefix[-1] else total) * p
        ranked = sorted(fresh.items(), key=lambda item: item[1][0] + item[1][1], reverse=True)[:beam]
        beams = {prefix: (values[0], values[1]) for prefix, values in ranked}
    complete = [
        (prefix, p_blank + p_char)
        for prefix, (p_blank, p_char) in beams.items()
        if prefix
        and _grammar("".join(_signature(c) for c in prefix), two_row)[1]
        and plate_format.is_valid(prefix)
    ]
    complete.sort(key=lambda item: item[1], reverse=True)
    complete = complete[:top]
    return Reading(tuple(t for t, _ in complete), tuple(float(s) for _, s in complete))


def _province_prior(prefix: str) -> float:
    if len(prefix) == 2 and prefix.isdigit() and prefix not in plate_format.PROVINCE_CODES:
        return _UNKNOWN_PROVINCE_PRIOR
    return 1.0


class StripReader:
    """The ONNX strip reader. ``read`` is thread-safe (onnxruntime sessions are)."""

    def __init__(self, path: Path, *, threads: int = 1) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def read(self, strips: np.ndarray) -> np.ndarray:
        """``(N, 32, 192) uint8`` strips -> ``(N, T, 37) float32`` column probabilities."""
        batch = strips.astype(np.float32)[:, None] * np.float32(1 / 255)
        return self._session.run(None, {"strip": batch})[0]
