"""The Vietnamese plate grammar: validity, canonical and display forms, provinces, look-alikes."""

from __future__ import annotations

import random

import numpy as np
import pytest

from detectors import plate_format


@pytest.mark.parametrize(
    "text",
    ["51G10096", "52P5688", "29X504899", "29BK04366", "30LD12345", "29MĐ101353", "29MD101353", "TM1234",
     "80011NG01", "51F-869.88", "29-X5 048.99", "51f 869 88"],
)  # fmt: skip
def test_valid_plates(text: str) -> None:
    assert plate_format.is_valid(text)


@pytest.mark.parametrize(
    "text", ["51I12345", "51W12345", "5AF12345", "51F123", "51F1234567", "", "ABCDEFGH", "5"]
)
def test_invalid_plates(text: str) -> None:
    assert not plate_format.is_valid(text)


def test_canonical_folds_separators_case_and_d_stroke() -> None:
    assert plate_format.canonical("51f-869.88") == "51F86988"
    assert plate_format.canonical("29-MĐ1 013.53") == "29MD101353"
    assert plate_format.canonical(" 29-x5 048.99 ") == "29X504899"


@pytest.mark.parametrize(
    ("text", "layout", "expected"),
    [
        ("51F86988", None, "51F-869.88"),
        ("52P5688", None, "52P-5688"),
        ("29X504899", None, "29-X5 048.99"),
        ("29X504899", "motorbike", "29-X5 048.99"),
        ("30LD12345", "one_line", "30LD-123.45"),
        ("29BK04366", "motorbike", "29-BK 043.66"),
        ("51G10096", "two_line", "51G-100.96"),
        ("51G10096", "motorbike", "51-G1 0096"),
        ("29MĐ101353", None, "29-MĐ1 013.53"),
        ("29MD101353", None, "29-MĐ1 013.53"),  # read without its stroke: MĐ1 is the only such series
        ("30TD12345", "one_line", "30TĐ-123.45"),
        ("30MD12345", "two_line", "30MĐ-123.45"),
        ("TM1234", None, "TM-12-34"),
        ("80011NG01", None, "80-011-NG-01"),
        ("not a plate", None, "NOTAPLATE"),
    ],
)
def test_display(text: str, layout: str | None, expected: str) -> None:
    assert plate_format.display(text, layout) == expected


def test_display_round_trips_through_canonical() -> None:
    rng = np.random.default_rng(5)
    for layout in ("one_line", "two_line", "motorbike"):
        for _ in range(200):
            text = plate_format.random_plate_text(rng, layout=layout)
            assert plate_format.canonical(plate_format.display(text, layout)) == text


def _mangled(rng: random.Random, text: str) -> str:
    """``text`` as cameras and gateways might send it: case, separators, Đ, typos."""
    chars = list(text.lower() if rng.random() < 0.3 else text)
    for _ in range(rng.randrange(3)):
        chars.insert(rng.randrange(len(chars) + 1), rng.choice("-. Đđ0OI1xyz"))
    if rng.random() < 0.2 and chars:
        del chars[rng.randrange(len(chars))]
    return "".join(chars)


def test_parse_agrees_with_the_single_questions() -> None:
    rng, np_rng = random.Random(11), np.random.default_rng(11)
    layouts = ("one_line", "two_line", "motorbike")
    texts = ["", "TM1234", "80011NG01", "29MĐ101353", "10A12345", "0000", "ĐĐ", "51F86988 "]
    for _ in range(3000):
        layout = rng.choice(layouts)
        texts.append(_mangled(rng, plate_format.random_plate_text(np_rng, layout=layout)))
    for text in texts:
        parsed = plate_format.parse(text)
        canonical = plate_format.canonical(text)
        if not plate_format.is_valid(canonical):
            assert parsed is None, text
            continue
        # displayed as the text was written: a Đ stays Đ (29-MĐ1 013.53), as in display()
        assert parsed == (canonical, plate_format.display(text), plate_format.province_of(text)), text
        for layout in layouts:
            assert plate_format.parse(text, layout).display == plate_format.display(text, layout)


def test_province_of() -> None:
    assert plate_format.province_of("20A12345") == "20"
    assert plate_format.province_of("51F-869.88") == "51"
    assert plate_format.province_of("TM1234") is None  # military: no province
    assert plate_format.province_of("10A12345") is None  # no such code
    assert plate_format.province_of("garbage") is None
    assert plate_format.PROVINCE_CODES["20"] == "Thái Nguyên"


def test_lookalikes_are_symmetric_groups() -> None:
    groups = {frozenset(g) for g in plate_format.LOOKALIKES}
    for expected in ("0ODQ", "1IT", "2Z", "5S", "6G", "8B", "4A"):
        assert frozenset(expected) in groups
    assert plate_format.lookalike_key("51F-869.88") == plate_format.lookalike_key("SIF86988")
    assert plate_format.lookalike_key("51F86988") != plate_format.lookalike_key("51F86989")


@pytest.mark.parametrize("layout", ["one_line", "two_line", "motorbike"])
def test_random_plates_are_valid_and_respect_province(layout: str) -> None:
    rng = np.random.default_rng(1)
    texts = [plate_format.random_plate_text(rng, layout=layout) for _ in range(2000)]
    assert all(plate_format.is_valid(t) for t in texts)
    assert len(set(texts)) > 1900
    assert {plate_format.province_of(t) for t in texts} <= set(plate_format.PROVINCE_CODES)
    fixed = [
        plate_format.random_plate_text(random.Random(i), layout=layout, province="20") for i in range(50)
    ]
    assert all(t.startswith("20") and plate_format.is_valid(t) for t in fixed)


def test_motorbike_plates_have_motorbike_series() -> None:
    rng = np.random.default_rng(2)
    texts = [plate_format.random_plate_text(rng, layout="motorbike") for _ in range(500)]
    assert sum(t[3].isdigit() for t in texts) > 400  # letter + digit series, e.g. X5


def test_templates_cover_generated_plates() -> None:
    rng = np.random.default_rng(3)
    for layout in ("one_line", "two_line", "motorbike"):
        for _ in range(300):
            text = plate_format.random_plate_text(rng, layout=layout)
            assert layout in plate_format.layouts(text), text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("75U82787", {"one_line", "two_line", "motorbike"}),  # car 75U-827.87 or motorbike 75-U8 2787
        ("34F2922", {"one_line", "two_line"}),  # a motorbike's series would be F2 and its serial 3 digits
        ("29X504899", {"motorbike"}),
        ("29-X5 048.99", {"motorbike"}),
        ("30LD12345", {"one_line", "two_line", "motorbike"}),
        ("80011NG01", {"one_line"}),
        ("TM1234", {"one_line", "two_line"}),
        ("51I12345", set()),
        ("", set()),
    ],
)
def test_layouts_a_text_fits(text: str, expected: set[str]) -> None:
    assert plate_format.layouts(text) == expected


@pytest.mark.parametrize(
    ("home", "codes"),
    [
        ("20", ("20",)), ("20,97", ("20", "97")), (" 20 , 97,20", ("20", "97")),
        # a city with several codes: one of them names them all (a Hà Nội IOC set to 29 took
        # 30-33 and 40 for out-of-province plates)
        ("29", ("29", "30", "31", "32", "33", "40")), ("16", ("16", "15")),
        ("51", ("51", "41", "50", "52", "53", "54", "55", "56", "57", "58", "59")),
    ],
)
def test_home_codes(home: str, codes: tuple[str, ...]) -> None:
    assert plate_format.home_codes(home) == codes


@pytest.mark.parametrize(
    ("province", "home", "outside"),
    [("20", "20", False), ("29", "20", True), ("97", "20", True), ("97", "20,97", False),
     ("31", "29", False), (None, "20", None)],
)
def test_out_of_province(province: str | None, home: str, outside: bool | None) -> None:
    assert plate_format.out_of_province(province, home) is outside


@pytest.mark.parametrize("home", ["", "2O", "20,", "20;97", "39", "Thái Nguyên"])
def test_home_codes_refuse_what_no_province_uses(home: str) -> None:
    with pytest.raises(ValueError, match="not a province code"):
        plate_format.home_codes(home)


@pytest.mark.parametrize(
    ("text", "layout", "serial"),
    [
        ("51F-869.88", None, "86988"),
        ("52P5688", "one_line", "5688"),
        ("75U82787", "two_line", "82787"),
        ("75U82787", "motorbike", "2787"),
        ("29MD101353", "motorbike", "01353"),
        ("TM1234", None, None),
        ("80011NG01", None, None),
        ("51I86988", None, None),
    ],
)
def test_serial_digits_as_the_layout_has_them(text: str, layout: str | None, serial: str | None) -> None:
    assert plate_format.serial(text, layout) == serial


@pytest.mark.parametrize(
    ("text", "layout", "length"),
    [
        ("30F78286", "two_line", 3),
        ("30F78286", "motorbike", 4),
        ("29BK04366", "motorbike", 4),
        ("30LD12345", "two_line", 4),
        ("52P5688", "one_line", None),
        ("51I12345", "two_line", None),
    ],
)
def test_top_row_length_as_the_layout_lays_the_text_out(text: str, layout: str, length: int | None) -> None:
    assert plate_format.top_row_length(text, layout) == length
