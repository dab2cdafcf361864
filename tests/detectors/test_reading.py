"""Grammar-constrained CTC decoding on hand-made column probabilities (no model involved)."""

from __future__ import annotations

import numpy as np

from detectors.reading import ALPHABET, character_columns, decode


def _columns(spec: list[dict[str, float]], *, blank_between: bool = True) -> np.ndarray:
    """``(T, 37)`` probabilities: one column per dict (char -> prob, rest blank), blanks between."""
    rows = []
    for column in spec:
        row = np.zeros(len(ALPHABET) + 1)
        for char, p in column.items():
            row[ALPHABET.index(char) + 1] = p
        row[0] = 1.0 - row.sum()
        rows.append(row)
        if blank_between:
            blank = np.zeros(len(ALPHABET) + 1)
            blank[0] = 1.0
            rows.append(blank)
    return np.array(rows, np.float32)


def test_letter_in_a_digit_position_is_corrected() -> None:
    # greedy reading would be "5IF86988": I is likelier in column 2, but a digit must stand there
    probs = _columns([{"5": 0.99}, {"I": 0.6, "1": 0.35}, {"F": 0.99}] + [{c: 0.99} for c in "86988"])
    reading = decode(probs, two_row=False)
    assert reading.texts[0] == "51F86988"
    assert 0.3 < reading.scores[0] < 0.4


def test_repeated_characters_need_a_blank() -> None:
    probs = _columns([{c: 0.99} for c in "51F86988"])
    assert decode(probs, two_row=False).texts[0] == "51F86988"
    # "88" in adjacent columns without a blank collapses to one 8: the template then needs a 4-digit serial
    collapsed = _columns([{c: 0.99} for c in "51F869"] + [{"8": 0.99}], blank_between=True)
    collapsed = np.vstack([collapsed[:-1], collapsed[-2:-1], collapsed[-1:]])
    assert decode(collapsed, two_row=False).texts[0] == "51F8698"


def test_motorbike_shapes_only_for_two_row_strips() -> None:
    probs = _columns([{c: 0.99} for c in "29X504899"])
    assert decode(probs, two_row=True).texts[0] == "29X504899"
    one_line = decode(probs, two_row=False)
    assert "29X504899" not in one_line.texts


def test_unknown_province_is_a_soft_prior() -> None:
    probs = _columns([{"1": 0.99}, {"0": 0.55, "9": 0.44}, {"A": 0.99}] + [{c: 0.99} for c in "12345"])
    reading = decode(probs, two_row=False)
    assert reading.texts[0] == "19A12345"  # 10 is no province code, 19 is
    assert "10A12345" in reading.texts  # still offered as an alternative


def test_noise_gives_no_plate() -> None:
    blank_only = np.zeros((48, len(ALPHABET) + 1), np.float32)
    blank_only[:, 0] = 1.0
    assert decode(blank_only, two_row=True).texts == ()
    too_short = _columns([{c: 0.99} for c in "51F8"])
    assert decode(too_short, two_row=False).texts == ()


def test_character_columns_are_the_centres_of_the_aligned_characters() -> None:
    probs = np.zeros((20, len(ALPHABET) + 1), np.float32)
    probs[:, 0] = 1.0
    for column, char, p in [(2, "5", 0.99), (6, "8", 0.5), (7, "8", 0.5), (11, "8", 0.99), (15, "1", 0.9),
                            (16, "1", 0.3)]:  # fmt: skip
        probs[column, ALPHABET.index(char) + 1] = p
        probs[column, 0] = 1.0 - p
    # the two 8s are two characters (a blank between them), each placed between its columns
    assert np.allclose(character_columns(probs, "5881"), [2.0, 6.5, 11.0, 15.25])
    # where the likeliest class of each column spells something else (I for 1), the search aligns
    probs[15, [0, ALPHABET.index("I") + 1, ALPHABET.index("1") + 1]] = [0.1, 0.5, 0.4]
    assert np.allclose(character_columns(probs, "5881"), [2.0, 6.5, 11.0, (15 * 0.4 + 16 * 0.3) / 0.7])
    assert character_columns(probs, "").shape == (0,)
