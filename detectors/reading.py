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
import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detectors import plate_format
from detectors.onnx_session import cpu_session
from detectors.plate_format import Layout

__all__ = ["ALPHABET", "Reading", "StripReader", "character_columns", "decode", "holds_characters"]

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # CTC class i + 1; class 0 is the blank
_MIN_CHAR_PROB = 5e-3  # characters below this in a column are not considered there
_MIN_INK = 4.0  # expected number of character columns below which a strip holds no plate
_UNKNOWN_PROVINCE_PRIOR = 0.05
_RELATIVE_FLOOR = 1e-3  # prefixes this much less likely than the best are dropped early
READ_BATCH = 8  # strips per run of the reader network
_CENTRE_REACH = 2  # columns each side of a character's alignment weighed for its centre


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
_SIGNATURE = {char: _signature(char) for char in ALPHABET}
_INDEX = {char: i for i, char in enumerate(ALPHABET)}


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
    if not holds_characters(probs):
        return Reading((), ())
    columns = probs.astype(np.float64)
    blank = columns[:, 0].tolist()
    # beam entries: prefix -> [p_blank, p_char, signature, characters allowed next]
    start = _grammar("", two_row)[0]
    beams: dict[str, list] = {"": [1.0, 0.0, "", start]}
    for t, chars, column in _column_options(columns):
        b = blank[t]
        if not chars:
            for entry in beams.values():
                entry[0] = (entry[0] + entry[1]) * b
                entry[1] = 0.0  # continuing a character is below _MIN_CHAR_PROB: negligible
            continue
        fresh: dict[str, list] = {}
        for prefix, (p_blank, p_char, signature, allowed) in beams.items():
            total = p_blank + p_char
            last = prefix[-1] if prefix else ""
            stay = p_char * column[_INDEX[last] + 1] if prefix else 0.0
            entry = fresh.get(prefix)
            if entry is None:
                fresh[prefix] = [total * b, stay, signature, allowed]
            else:
                entry[0] += total * b
                entry[1] += stay
            for char, p in chars:
                if char not in allowed:
                    continue
                extended = prefix + char
                if len(extended) == 2 and extended.isdigit() and extended not in plate_format.PROVINCE_CODES:
                    p *= _UNKNOWN_PROVINCE_PRIOR
                gain = (p_blank if char == last else total) * p
                target = fresh.get(extended)
                if target is None:
                    grown = signature + _SIGNATURE[char]
                    fresh[extended] = [0.0, gain, grown, _grammar(grown, two_row)[0]]
                else:
                    target[1] += gain
        scored = [(entry[0] + entry[1], prefix) for prefix, entry in fresh.items()]
        floor = max(scored)[0] * _RELATIVE_FLOOR
        scored = [item for item in scored if item[0] >= floor]
        if len(scored) > beam:
            scored = heapq.nlargest(beam, scored)
        beams = {prefix: fresh[prefix] for _, prefix in scored}
    complete = [
        (prefix, entry[0] + entry[1])
        for prefix, entry in beams.items()
        if prefix and _grammar(entry[2], two_row)[1] and plate_format.is_valid(prefix)
    ]
    complete.sort(key=lambda item: item[1], reverse=True)
    complete = complete[:top]
    return Reading(tuple(t for t, _ in complete), tuple(float(s) for _, s in complete))


def holds_characters(probs: np.ndarray) -> bool:
    """Whether a strip's ``(T, 37)`` column probabilities expect at least :data:`_MIN_INK` character
    columns; a strip with fewer holds no plate (:func:`decode` reads none there)."""
    return float((1.0 - probs[:, 0].astype(np.float64)).sum()) >= _MIN_INK


def character_columns(probs: np.ndarray, text: str) -> np.ndarray:
    """Where each character of ``text`` lies in the strip, in reader columns (fractional).

    The columns the best CTC alignment of ``text`` to the ``(T, 37)`` column probabilities
    gives each character, then its probability-weighted centre within :data:`_CENTRE_REACH`
    columns of them: a column is 4 pixels of the strip, coarser than the spacing differences
    worth seeing (the dot of ``869.88``).
    """
    if not text:
        return np.empty(0)
    aligned = _greedy_alignment(probs, text) or _best_alignment(probs, text)
    centres = np.empty(len(text))
    for i, (char, at) in enumerate(zip(text, aligned, strict=True)):
        middle = round(float(np.mean(at))) if at else 0
        low, high = max(middle - _CENTRE_REACH, 0), min(middle + _CENTRE_REACH + 1, len(probs))
        weights = probs[low:high, _INDEX[char] + 1].astype(np.float64)
        centres[i] = float(np.arange(low, high) @ weights / max(weights.sum(), 1e-12))
    return centres


def _greedy_alignment(probs: np.ndarray, text: str) -> list[list[int]] | None:
    """Each character's columns where the likeliest class of each column spells ``text`` (then
    that is the best alignment too); None where it does not. Ten times as fast as the search."""
    likeliest = probs.argmax(axis=1).tolist()
    runs: list[list[int]] = []
    previous = 0
    for t, k in enumerate(likeliest):
        if k and k == previous:
            runs[-1].append(t)
        elif k:
            runs.append([t])
        previous = k
    spelt = "".join(ALPHABET[likeliest[run[0]] - 1] for run in runs)
    return runs if spelt == text else None


def _best_alignment(probs: np.ndarray, text: str) -> list[list[int]]:
    """Each character's columns in the best CTC alignment of ``text`` (Viterbi)."""
    labels = np.zeros(2 * len(text) + 1, np.int64)  # blank, c1, blank, c2, ..., blank
    labels[1::2] = [_INDEX[char] + 1 for char in text]
    states, columns = len(labels), len(probs)
    log_p = np.log(np.maximum(probs.astype(np.float64), 1e-12))[:, labels]
    may_skip = np.zeros(states, bool)  # a character may follow the previous one without a blank
    may_skip[3::2] = labels[3::2] != labels[1:-2:2]
    score = np.full(states, -np.inf)
    score[:2] = log_p[0, :2]
    moves = np.zeros((columns, states), np.int64)  # 0 stay, 1 from the previous state, 2 skip a blank
    for t in range(1, columns):
        step = np.full(states, -np.inf)
        step[1:] = score[:-1]
        skip = np.full(states, -np.inf)
        skip[2:] = np.where(may_skip[2:], score[:-2], -np.inf)
        options = np.stack((score, step, skip))
        moves[t] = options.argmax(axis=0)
        score = options[moves[t], np.arange(states)] + log_p[t]
    state = states - 1 if score[-1] >= score[-2] else states - 2
    aligned: list[list[int]] = [[] for _ in text]
    for t in range(columns - 1, -1, -1):
        if state % 2:
            aligned[state // 2].append(t)
        state -= int(moves[t, state])
    return aligned


def _column_options(
    columns: np.ndarray, *, per_column: int = 4
) -> Iterator[tuple[int, list[tuple[str, float]], list[float]]]:
    """Each column ``t`` of ``(T, 37)`` probabilities with up to ``per_column`` characters above
    :data:`_MIN_CHAR_PROB`, likeliest first, and the column's probabilities as plain floats (those
    only where it has such characters: most columns of a strip are blank margins and gaps).

    Plain floats because arithmetic on numpy scalars is several times slower."""
    where, which = np.nonzero(columns[:, 1:] > _MIN_CHAR_PROB)
    likely: dict[int, list[tuple[float, str]]] = {}
    for t, i, p in zip(where.tolist(), which.tolist(), columns[where, which + 1].tolist(), strict=True):
        likely.setdefault(t, []).append((p, ALPHABET[i]))
    rows = dict(zip(likely, columns[list(likely)].tolist(), strict=True))
    for t in range(len(columns)):
        found = likely.get(t)
        if found is None:
            yield t, [], []
        else:
            found.sort(reverse=True)
            yield t, [(char, p) for p, char in found[:per_column]], rows[t]


class StripReader:
    """The ONNX strip reader. ``read`` is thread-safe (onnxruntime sessions are)."""

    def __init__(self, path: Path, *, threads: int = 1) -> None:
        self._session = cpu_session(path, threads=threads)

    def read(self, strips: np.ndarray) -> np.ndarray:
        """``(N, 32, 192) uint8`` strips -> ``(N, T, 37) float32`` column probabilities.

        Read :data:`READ_BATCH` strips at a time: onnxruntime keeps the memory of the largest
        batch it has run (about 1.2 MB a strip), and larger batches were no faster per strip.
        """
        batch = strips.astype(np.float32)[:, None] * np.float32(1 / 255)
        starts = range(0, max(len(batch), 1), READ_BATCH)  # an empty batch still runs once: (0, T, 37)
        runs = [self._session.run(None, {"strip": batch[i : i + READ_BATCH]})[0] for i in starts]
        return np.concatenate(runs)
