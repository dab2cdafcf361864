"""Vietnamese plates drawn as a camera would see them head-on: fonts, layouts, colours, borders.

:func:`render_plate` draws a frontal, undamaged plate; :mod:`detectors.synthetic` puts it in a
scene and damages it. ``style="train"`` and ``style="test"`` draw from disjoint fonts
(:data:`FONTS`), so a model trained on one is measured on lettering it has never seen.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from detectors import plate_format
from detectors.camera_faults import Style
from detectors.plate_format import Layout

__all__ = [
    "FONTS",
    "PLATE_SIZES_MM",
    "Colour",
    "PlateSpec",
    "plate_lines",
    "random_plate_spec",
    "render_plate",
    "text_mask",
]


FONT_DIR = Path(__file__).with_name("fonts")
FONTS: dict[str, tuple[str, ...]] = {
    "train": (
        "barlow-condensed-latin-500-normal.woff",
        "barlow-condensed-latin-600-normal.woff",
        "roboto-condensed-latin-500-normal.woff",
        "roboto-condensed-latin-700-normal.woff",
        "archivo-narrow-latin-600-normal.woff",
        "encode-sans-condensed-latin-600-normal.woff",
        "pt-sans-narrow-latin-400-normal.woff",
        "pt-sans-narrow-latin-700-normal.woff",
    ),
    "test": (
        "saira-condensed-latin-600-normal.woff",
        "ibm-plex-sans-condensed-latin-500-normal.woff",
        "ibm-plex-sans-condensed-latin-600-normal.woff",
    ),
}


class Colour(StrEnum):
    """Same values as ``ioc.schemas.PlateColour`` (detectors does not import ioc)."""

    WHITE = "white"
    YELLOW = "yellow"
    BLUE = "blue"
    RED = "red"


# Physical plate sizes (width, height) in millimetres; one pixel per mm at scale 1.
PLATE_SIZES_MM: dict[Layout, tuple[int, int]] = {
    Layout.ONE_LINE: (520, 110),
    Layout.TWO_LINE: (330, 165),
    Layout.MOTORBIKE: (190, 140),
}

# Background and ink colours (BGR) per plate colour.
_PLATE_BG: dict[Colour, tuple[int, int, int]] = {
    Colour.WHITE: (238, 240, 240),
    Colour.YELLOW: (30, 200, 240),
    Colour.BLUE: (150, 70, 20),
    Colour.RED: (40, 40, 190),
}
_PLATE_INK: dict[Colour, tuple[int, int, int]] = {
    Colour.WHITE: (25, 25, 25),
    Colour.YELLOW: (20, 20, 20),
    Colour.BLUE: (245, 245, 245),
    Colour.RED: (245, 245, 245),
}


@dataclass(frozen=True)
class PlateSpec:
    """What to draw: canonical text, layout and colour."""

    text: str
    layout: Layout
    colour: Colour


@functools.lru_cache(maxsize=64)
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_DIR / name), size)


def plate_lines(text: str, layout: str, *, rng: np.random.Generator | None = None) -> list[str]:
    """The printed rows of a plate: ``["51F-869.88"]``, ``["51F", "869.88"]``, ``["29-X5", "048.99"]``."""
    shown = plate_format.display(text, layout)
    layout = Layout(layout)
    if layout == Layout.ONE_LINE:
        return [shown]
    if layout == Layout.MOTORBIKE and " " in shown:
        top, bottom = shown.split(" ", 1)
        return [top, bottom]
    if "-" in shown:
        top, bottom = shown.split("-", 1)
        dash = rng is not None and rng.random() < 0.3
        return [top + ("-" if dash else ""), bottom]
    return [shown]


def text_mask(row: str, font_name: str, *, bold: int) -> np.ndarray:
    """One row of text as a tight ``(H, W) uint8`` ink mask (255 = ink)."""
    font = _font(font_name, 96)
    stroke_row = row.replace("Đ", "D")
    left, top, right, bottom = font.getbbox(stroke_row, stroke_width=bold)
    canvas = Image.new("L", (right - left + 8, bottom - top + 8), 0)
    ImageDraw.Draw(canvas).text(
        (4 - left, 4 - top), stroke_row, font=font, fill=255, stroke_width=bold, stroke_fill=255
    )
    mask = np.array(canvas)
    if "Đ" in row:
        _draw_d_stroke(mask, row, font, bold)
    ys, xs = np.nonzero(mask > 40)
    return mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _draw_d_stroke(mask: np.ndarray, row: str, font: ImageFont.FreeTypeFont, bold: int) -> None:
    index = row.index("Đ")
    prefix = row[:index].replace("Đ", "D")
    x0 = 4 + font.getlength(prefix) if prefix else 4.0
    height = mask.shape[0]
    y = int(height * 0.5)
    cv2.line(mask, (int(x0 - 4), y), (int(x0 + 22), y), 255, 7 + bold)


def random_plate_spec(
    rng: np.random.Generator, *, layout: str | None = None, colour: str | None = None
) -> PlateSpec:
    """A random plate with realistic layout and colour frequencies (military plates are red)."""
    chosen = Layout(layout) if layout else rng.choice(list(Layout), p=[0.45, 0.2, 0.35])
    if colour is None:
        colour = rng.choice(list(Colour), p=[0.62, 0.22, 0.08, 0.08])
    colour = Colour(colour)
    if colour == Colour.RED and chosen != Layout.MOTORBIKE and rng.random() < 0.7:
        letters = plate_format.SERIES_LETTERS
        text = "".join(letters[i] for i in rng.integers(0, len(letters), 2))
        text = text + "".join(str(d) for d in rng.integers(0, 10, 4))
        return PlateSpec(text, chosen, colour)
    return PlateSpec(plate_format.random_plate_text(rng, layout=chosen), chosen, colour)


def render_plate(
    text: str,
    *,
    layout: str,
    colour: str,
    rng: np.random.Generator,
    style: Style = "train",
    scale: float = 1.0,
) -> np.ndarray:
    """A frontal, undamaged plate as an ``(H, W, 3) uint8 BGR`` image.

    Size is the physical plate size in millimetres times ``scale`` (one-line car
    520x110, two-line car 330x165, motorbike 190x140 at ``scale=1``). Font, stroke
    weight, border, tint and screw heads vary with ``rng``.
    """
    layout = Layout(layout)
    colour = Colour(colour)
    width_mm, height_mm = PLATE_SIZES_MM[layout]
    width, height = max(int(width_mm * scale), 8), max(int(height_mm * scale), 8)
    fonts = FONTS[style]
    font_name = fonts[int(rng.integers(len(fonts)))]
    bold = int(rng.integers(0, 4))
    bg = np.array(_PLATE_BG[colour], dtype=np.float32) + rng.normal(0, 10, 3)
    ink = np.array(_PLATE_INK[colour], dtype=np.float32) + rng.normal(0, 8, 3)
    plate = np.empty((height, width, 3), dtype=np.float32)
    plate[:] = np.clip(bg, 0, 255)
    # gentle illumination gradient across the plate
    gradient = np.linspace(1.0 - rng.uniform(0, 0.15), 1.0, width, dtype=np.float32)
    plate *= gradient[None, :, None] if rng.random() < 0.5 else gradient[None, ::-1, None]

    rows = plate_lines(text, layout, rng=rng)
    margin_x = width * rng.uniform(0.035, 0.06)
    margin_y = height * rng.uniform(0.08, 0.13)
    gap = height * rng.uniform(0.05, 0.09) if len(rows) == 2 else 0.0
    row_h = (height - 2 * margin_y - gap) / len(rows)
    ink_mask = np.zeros((height, width), dtype=np.float32)
    for i, row in enumerate(rows):
        glyphs = text_mask(row, font_name, bold=bold).astype(np.float32) / 255.0
        target_h = max(int(row_h * rng.uniform(0.9, 1.0)), 4)
        natural_w = glyphs.shape[1] * target_h / glyphs.shape[0]
        avail_w = width - 2 * margin_x
        target_w = int(min(avail_w, natural_w * rng.uniform(0.95, 1.25)))
        if len(rows) == 1 or i == 1:
            target_w = int(max(target_w, avail_w * rng.uniform(0.85, 0.97)))
        target_w = max(min(target_w, int(avail_w)), 4)
        resized = cv2.resize(glyphs, (target_w, target_h), interpolation=cv2.INTER_AREA)
        x0 = int((width - target_w) / 2 + rng.uniform(-1, 1) * margin_x * 0.3)
        y0 = int(margin_y + i * (row_h + gap) + (row_h - target_h) / 2)
        x0 = int(np.clip(x0, 0, width - target_w))
        ink_mask[y0 : y0 + target_h, x0 : x0 + target_w] = np.maximum(
            ink_mask[y0 : y0 + target_h, x0 : x0 + target_w], resized
        )

    border = max(int(min(width, height) * rng.uniform(0.015, 0.035)), 1)
    inset = int(border * rng.uniform(0.5, 1.5))
    cv2.rectangle(ink_mask, (inset, inset), (width - 1 - inset, height - 1 - inset), 1.0, border, cv2.LINE_AA)
    # embossed look: a faint shadow below-right of the ink
    shadow = np.roll(np.roll(ink_mask, 1, axis=0), 1, axis=1) * rng.uniform(0.0, 0.35)
    plate *= 1.0 - shadow[..., None] * 0.5
    plate = plate * (1.0 - ink_mask[..., None]) + ink[None, None, :] * ink_mask[..., None]
    _draw_screws(plate, rng, ink)
    return np.clip(plate, 0, 255).astype(np.uint8)


def _draw_screws(plate: np.ndarray, rng: np.random.Generator, ink: np.ndarray) -> None:
    if rng.random() < 0.5:
        return
    height, width = plate.shape[:2]
    radius = max(int(min(width, height) * 0.03), 1)
    tone = tuple(float(v) for v in (ink * 0.5 + 90))
    for x in (width * 0.2, width * 0.8):
        cv2.circle(plate, (int(x), int(height * 0.06) + radius), radius, tone, -1, cv2.LINE_AA)
