"""Vietnamese licence-plate grammar: canonical and display forms, provinces, look-alikes.

The canonical form (``51F86988``) is what the system stores and matches on:
uppercase letters and digits only, with Đ folded to D. The display form adds the
usual separators (``51F-869.88``, motorbike ``29-X5 048.99``). The same grammar
drives the recogniser's decoder (:data:`TEMPLATES`), so reads are shaped by it
rather than merely filtered.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple, Protocol

__all__ = [
    "CAR_SERIES_LETTERS",
    "CHARACTER_CLASSES",
    "LOOKALIKES",
    "PROVINCE_CODES",
    "SERIES_LETTERS",
    "TEMPLATES",
    "Layout",
    "PlateText",
    "canonical",
    "display",
    "home_codes",
    "is_valid",
    "layouts",
    "lookalike_key",
    "out_of_province",
    "parse",
    "province_of",
    "random_plate_text",
    "serial",
    "top_row_length",
]


class Layout(StrEnum):
    """Same values as ``ioc.schemas.PlateLayout`` (detectors does not import ioc)."""

    ONE_LINE = "one_line"
    TWO_LINE = "two_line"
    MOTORBIKE = "motorbike"


PROVINCE_CODES: dict[str, str] = {
    "11": "Cao Bằng", "12": "Lạng Sơn", "14": "Quảng Ninh", "15": "Hải Phòng", "16": "Hải Phòng",
    "17": "Thái Bình", "18": "Nam Định", "19": "Phú Thọ", "20": "Thái Nguyên", "21": "Yên Bái",
    "22": "Tuyên Quang", "23": "Hà Giang", "24": "Lào Cai", "25": "Lai Châu", "26": "Sơn La",
    "27": "Điện Biên", "28": "Hòa Bình", "29": "Hà Nội", "30": "Hà Nội", "31": "Hà Nội",
    "32": "Hà Nội", "33": "Hà Nội", "34": "Hải Dương", "35": "Ninh Bình", "36": "Thanh Hóa",
    "37": "Nghệ An", "38": "Hà Tĩnh", "40": "Hà Nội", "41": "TP Hồ Chí Minh", "43": "Đà Nẵng",
    "47": "Đắk Lắk", "48": "Đắk Nông", "49": "Lâm Đồng", "50": "TP Hồ Chí Minh",
    "51": "TP Hồ Chí Minh", "52": "TP Hồ Chí Minh", "53": "TP Hồ Chí Minh", "54": "TP Hồ Chí Minh",
    "55": "TP Hồ Chí Minh", "56": "TP Hồ Chí Minh", "57": "TP Hồ Chí Minh", "58": "TP Hồ Chí Minh",
    "59": "TP Hồ Chí Minh", "60": "Đồng Nai", "61": "Bình Dương", "62": "Long An",
    "63": "Tiền Giang", "64": "Vĩnh Long", "65": "Cần Thơ", "66": "Đồng Tháp", "67": "An Giang",
    "68": "Kiên Giang", "69": "Cà Mau", "70": "Tây Ninh", "71": "Bến Tre", "72": "Bà Rịa–Vũng Tàu",
    "73": "Quảng Bình", "74": "Quảng Trị", "75": "Huế", "76": "Quảng Ngãi", "77": "Bình Định",
    "78": "Phú Yên", "79": "Khánh Hòa", "80": "Cơ quan Trung ương", "81": "Gia Lai", "82": "Kon Tum",
    "83": "Sóc Trăng", "84": "Trà Vinh", "85": "Ninh Thuận", "86": "Bình Thuận", "88": "Vĩnh Phúc",
    "89": "Hưng Yên", "90": "Hà Nam", "92": "Quảng Nam", "93": "Bình Phước", "94": "Bạc Liêu",
    "95": "Hậu Giang", "97": "Bắc Kạn", "98": "Bắc Giang", "99": "Bắc Ninh",
}  # fmt: skip

# Letters used in series (I, J, O, Q, W never are; R is for trailers).
SERIES_LETTERS = "ABCDEFGHKLMNPRSTUVXYZ"
CAR_SERIES_LETTERS = "ABCDEFGHKLMNPSTUVXYZ"
_TWO_LETTER_CAR_SERIES = ("LD", "KT", "DA", "MK", "MD", "TD", "HC")
# series written with Đ (electric MĐ, pilot TĐ), folded to D in canonical text, shown with it again
_STROKED_SERIES = {"MD": "MĐ", "TD": "TĐ"}
_MOTORBIKE_TWO_LETTER_SERIES = ("AA", "AB", "AC", "AD", "AE", "AF", "AH", "AK", "BK", "CK", "DK")
_MILITARY_PREFIXES = ("TM", "TC", "TH", "TK", "TT", "TN", "QA", "QB", "QH", "QK", "KA", "KB", "KC")
_DIPLOMATIC_SERIES = ("NG", "QT", "NN", "CV")

# Characters that cameras and readers confuse; each group is near-equal for matching.
LOOKALIKES: tuple[frozenset[str], ...] = (
    frozenset("0ODQ"),
    frozenset("1IT"),
    frozenset("2Z"),
    frozenset("5S"),
    frozenset("6G"),
    frozenset("8B"),
    frozenset("4A"),
)
_LOOKALIKE_REPRESENTATIVE = str.maketrans({ch: min(group) for group in LOOKALIKES for ch in group})

_VALID = re.compile(
    r"^(?:\d{2}(?:[ABCDEFGHKLMNPRSTUVXYZĐ]{1,2}|[ABCDEFGHKLMNPRSTUVXYZ][1-9]|M[DĐ][1-9])\d{4,5}"
    r"|[A-Z]{2}\d{4}|\d{5}(?:NG|QT|NN|CV)\d{2,3})$"
)

# Plate shapes as per-position character classes, used by the recogniser's
# grammar-constrained decoder: D = digit, N = digit 1-9, L = series letter,
# A = any letter. Each entry: (template, layouts where it occurs).
TEMPLATES: tuple[tuple[str, tuple[Layout, ...]], ...] = (
    ("DDLDDDDD", (Layout.ONE_LINE, Layout.TWO_LINE)),
    ("DDLDDDD", (Layout.ONE_LINE, Layout.TWO_LINE)),
    ("DDLLDDDDD", (Layout.ONE_LINE, Layout.TWO_LINE, Layout.MOTORBIKE)),
    ("DDLLDDDD", (Layout.ONE_LINE, Layout.TWO_LINE, Layout.MOTORBIKE)),
    ("DDLNDDDDD", (Layout.MOTORBIKE,)),
    ("DDLNDDDD", (Layout.MOTORBIKE,)),
    ("DDLLNDDDDD", (Layout.MOTORBIKE,)),
    ("AADDDD", (Layout.ONE_LINE, Layout.TWO_LINE)),
    ("DDDDDAADD", (Layout.ONE_LINE,)),
    ("DDDDDAADDD", (Layout.ONE_LINE,)),
)
CHARACTER_CLASSES: dict[str, str] = {
    "D": "0123456789",
    "N": "123456789",
    "L": SERIES_LETTERS,
    "A": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
}


class _Rng(Protocol):
    def random(self) -> float: ...


def canonical(text: str) -> str:
    """Uppercase letters and digits only, Đ folded to D: ``"51f-869.88"`` -> ``"51F86988"``."""
    if text.isascii() and text.isalnum() and text.isupper():
        return text  # already canonical (what cameras and gateways mostly send)
    folded = text.upper().replace("Đ", "D")
    return "".join(ch for ch in folded if ch.isascii() and ch.isalnum())


def _compact_keep_d_stroke(text: str) -> str:
    upper = text.upper()
    return "".join(ch for ch in upper if ch == "Đ" or (ch.isascii() and ch.isalnum()))


def is_valid(text: str) -> bool:
    """Whether ``text`` (any separators, any case) is a well-formed Vietnamese plate."""
    return bool(_VALID.match(_compact_keep_d_stroke(text))) or bool(_VALID.match(canonical(text)))


def layouts(text: str) -> frozenset[Layout]:
    """The layouts a plate with this text can have (:data:`TEMPLATES`): ``75U82787`` fits a
    two-line car plate (``75U-827.87``) and a motorbike one (``75-U8 2787``), ``34F2922`` only
    car plates. Empty for text that fits no template."""
    compact = canonical(text)
    return frozenset(
        layout
        for template, template_layouts in TEMPLATES
        if len(template) == len(compact)
        and all(ch in CHARACTER_CLASSES[cls] for ch, cls in zip(compact, template, strict=True))
        for layout in template_layouts
    )


def province_of(text: str) -> str | None:
    """The two-digit province code of a plate, or None (military, unknown code, malformed)."""
    compact = canonical(text)
    code = compact[:2]
    return code if code in PROVINCE_CODES and _VALID.match(compact) else None


@lru_cache(maxsize=8)
def home_codes(home: str) -> tuple[str, ...]:
    """The plate codes of a home province written ``"20"`` or ``"20,97"``, each with the other
    codes of its province (``"29"``: Hà Nội's 29-33 and 40; ``"51"``: Hồ Chí Minh City's 41 and
    50-59), the configured ones first.

    Plates keep their codes when provinces merge (2025: Bắc Kạn, 97, into Thái Nguyên, 20),
    so a merged province has several, which the setting names. ValueError for a code no
    province uses: a typo in the setting would otherwise make every plate out-of-province.
    """
    codes = tuple(dict.fromkeys(code.strip() for code in home.split(",")))
    unknown = [code for code in codes if code not in PROVINCE_CODES]
    if unknown:
        raise ValueError(f"not a province code: {', '.join(repr(c) for c in unknown)} in {home!r}")
    provinces = {PROVINCE_CODES[code] for code in codes}
    return tuple(dict.fromkeys([*codes, *(c for c, name in PROVINCE_CODES.items() if name in provinces)]))


def out_of_province(province: str | None, home: str) -> bool | None:
    """Whether a plate of ``province`` (:func:`province_of`) is from outside the home province
    (``home`` as :func:`home_codes` takes it); None where the plate names no province."""
    return None if province is None else province not in home_codes(home)


def lookalike_key(text: str) -> str:
    """The canonical text with each look-alike character replaced by its group's representative.

    Two plates with the same key differ only by look-alike substitutions.
    """
    return canonical(text).translate(_LOOKALIKE_REPRESENTATIVE)


def _serial(digits: str) -> str:
    return f"{digits[:3]}.{digits[3:]}" if len(digits) == 5 else digits


_CAR = re.compile(r"(\d{2})([A-ZĐ]{1,2})(\d{4,5})")
_BIKE = re.compile(r"(\d{2})([A-Z][1-9]|M[DĐ][1-9])(\d{4,5})")
_SPECIAL = re.compile(r"[A-Z]{2}\d{4}")
_DIPLOMATIC = re.compile(r"(\d{2})(\d{3})([A-Z]{2})(\d{2,3})")


def _parse(compact: str, *, motorbike_first: bool) -> tuple[str, str, str] | None:
    """Split a valid ``29X504899`` into (province, series, serial), trying the likelier shape first."""
    for pattern in (_BIKE, _CAR) if motorbike_first else (_CAR, _BIKE):
        match = pattern.fullmatch(compact)
        if match:
            province, series, serial = match.groups()
            return province, series, serial
    return None


def display(text: str, layout: str | None = None) -> str:
    """Display form: ``51F-869.88``, ``52P-5688``, motorbike ``29-X5 048.99``.

    ``layout`` (``"one_line"``, ``"two_line"``, ``"motorbike"``) decides between car
    and motorbike separators where the text alone is ambiguous (``29BK04366``,
    ``51G10096``). Text that is not a valid plate comes back in canonical form.
    """
    compact = _compact_keep_d_stroke(text)
    if not _VALID.match(compact):
        compact = canonical(text)
        if not _VALID.match(compact):
            return compact
    return _display_valid(compact, layout)


class PlateText(NamedTuple):
    text: str  # canonical
    display: str
    province: str | None  # as province_of


def parse(text: str, layout: str | None = None) -> PlateText | None:
    """Canonical text, its display form and the province of a plate, or None if it is not one.

    What :func:`canonical`, :func:`is_valid`, :func:`display` and :func:`province_of`
    give for the canonical text, with one normalisation and one grammar match instead
    of one each: it runs for every edge read a worker takes in.
    """
    compact = canonical(text)
    if not _VALID.match(compact):
        return None
    code = compact[:2]
    shown = display(text, layout) if "Đ" in text or "đ" in text else _display_valid(compact, layout)
    return PlateText(compact, shown, code if code in PROVINCE_CODES else None)


def serial(text: str, layout: str | None = None) -> str | None:
    """The serial digits of a plate (``86988`` of ``51F-869.88``, ``5688`` of ``52P-5688``), read
    as ``layout`` would have them (``75U82787``: ``82787`` on a car, ``2787`` on a motorbike);
    None for military and diplomatic plates and for text that is not a plate."""
    compact = canonical(text)
    if not _VALID.match(compact):
        return None
    parsed = _parse(compact, motorbike_first=layout == Layout.MOTORBIKE)
    return None if parsed is None else parsed[2]


def top_row_length(text: str, layout: str) -> int | None:
    """How many characters the top row of a two-row plate with this text holds as ``layout``
    lays it out (``30F78286``: 3 on a two-line car plate, ``30F``, 4 on a motorbike's, ``30-F7``);
    None for a one-line layout and for text that is not such a plate."""
    compact = canonical(text)
    if layout == Layout.ONE_LINE or not _VALID.match(compact):
        return None
    parsed = _parse(compact, motorbike_first=layout == Layout.MOTORBIKE)
    return None if parsed is None else len(parsed[0]) + len(parsed[1])


def _display_valid(compact: str, layout: str | None) -> str:
    """:func:`display` of a compact text that matches the grammar."""
    if _SPECIAL.fullmatch(compact):
        return f"{compact[:2]}-{compact[2:4]}-{compact[4:]}"
    diplomatic = _DIPLOMATIC.fullmatch(compact)
    if diplomatic:
        return "-".join(diplomatic.groups())
    parsed = _parse(compact, motorbike_first=layout == Layout.MOTORBIKE)
    if parsed is None:  # pragma: no cover - _VALID guarantees one of the shapes
        return compact
    province, series, serial = parsed
    if series[:2] in _STROKED_SERIES:  # MĐ and TĐ exist, MD and TD do not: a reader sees no stroke
        series = _STROKED_SERIES[series[:2]] + series[2:]
    motorbike = layout == Layout.MOTORBIKE or series[-1].isdigit()
    if layout is None and series in _MOTORBIKE_TWO_LETTER_SERIES:
        motorbike = True
    if motorbike:
        return f"{province}-{series} {_serial(serial)}"
    return f"{province}{series}-{_serial(serial)}"


def _choice(rng: _Rng, options: str | tuple[str, ...] | list[str]) -> str:
    return options[min(int(rng.random() * len(options)), len(options) - 1)]


def _digits(rng: _Rng, count: int) -> str:
    return "".join(_choice(rng, "0123456789") for _ in range(count))


def random_plate_text(rng: _Rng, *, layout: str, province: str | None = None) -> str:
    """A random valid canonical plate for ``layout``.

    ``rng`` is anything with ``random() -> float`` (``numpy.random.Generator`` or
    ``random.Random``); ``province`` fixes the two-digit code, otherwise one is drawn.
    """
    code = province if province is not None else _choice(rng, tuple(PROVINCE_CODES))
    draw = rng.random()
    if Layout(layout) == Layout.MOTORBIKE:
        if draw < 0.80:
            series = _choice(rng, SERIES_LETTERS) + _choice(rng, "123456789")
            serial = _digits(rng, 5)
        elif draw < 0.88:
            series = _choice(rng, SERIES_LETTERS) + _choice(rng, "123456789")
            serial = _digits(rng, 4)
        elif draw < 0.98:
            series = _choice(rng, _MOTORBIKE_TWO_LETTER_SERIES)
            serial = _digits(rng, 5)
        else:
            series = "MD" + _choice(rng, "123456789")
            serial = _digits(rng, 5)
        return f"{code}{series}{serial}"
    series = _choice(rng, _TWO_LETTER_CAR_SERIES if draw < 0.05 else CAR_SERIES_LETTERS)
    serial = _digits(rng, 4 if rng.random() < 0.12 else 5)
    return f"{code}{series}{serial}"
