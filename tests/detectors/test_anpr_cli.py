"""``ioc anpr --json``: one JSON object per image and line, errors reported per image."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from detectors.plate_rendering import render_plate
from detectors.synthetic import render_scene
from ioc.commands.anpr import read_image

PLATE_KEYS = {"text", "display", "confidence", "bbox", "layout", "candidates"}


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that claims ``width x height`` but holds no pixel data (a huge image, cheaply)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ioc", "anpr", *args], capture_output=True, text=True, timeout=120,
        check=False, env=None if env is None else {**os.environ, **env},
    )


def test_json_lines_for_images_and_errors(tmp_path: Path) -> None:
    rng = np.random.default_rng(32)  # a scene whose two plates are both legible (31's motorbike is not)
    scene, truths = render_scene([("20A12345", "one_line", "white"), ("29X504899", "motorbike", "white")],
                                 rng=rng, style="test", occlusion=0.0, glare=0.0)  # fmt: skip
    empty, _ = render_scene([], rng=rng, style="test")
    cv2.imwrite(str(tmp_path / "scene.jpg"), scene, [cv2.IMWRITE_JPEG_QUALITY, 92])
    cv2.imwrite(str(tmp_path / "empty.png"), empty)
    (tmp_path / "notes.jpg").write_text("this is not an image")
    _png_header_only(tmp_path / "huge.png", 20000, 20000)
    names = [str(tmp_path / n) for n in ("scene.jpg", "notes.jpg", "missing.jpg", "huge.png", "empty.png")]

    completed = _run("--json", *names)

    assert completed.returncode == 1, completed.stderr  # some images failed
    lines = [json.loads(line) for line in completed.stdout.splitlines()]
    assert [line["image"] for line in lines] == names
    scene_line, notes_line, missing_line, huge_line, empty_line = lines
    for line in (notes_line, missing_line, huge_line):
        assert set(line) == {"image", "ms", "error"} and line["error"]
    assert "too large" in huge_line["error"]
    assert set(empty_line) == {"image", "ms", "plates"} and empty_line["plates"] == []
    assert set(scene_line) == {"image", "ms", "plates"}
    assert isinstance(scene_line["ms"], float) and scene_line["ms"] > 0
    plates = scene_line["plates"]
    assert plates and all(set(p) == PLATE_KEYS for p in plates)
    assert [p["confidence"] for p in plates] == sorted((p["confidence"] for p in plates), reverse=True)
    assert {p["text"] for p in plates} >= {"20A12345", "29X504899"}  # a fixed seed: both are read
    for plate in plates:
        assert len(plate["bbox"]) == 4 and all(isinstance(v, int) for v in plate["bbox"])
        assert plate["layout"] in {"one_line", "two_line", "motorbike"}
        assert plate["candidates"][0] == {"text": plate["text"], "confidence": plate["confidence"]}
    [motorbike] = [p for p in plates if p["text"] == "29X504899"]
    assert motorbike["display"] == "29-X5 048.99" and motorbike["layout"] == "motorbike"


def test_odd_file_names_and_shapes_get_a_line_each(tmp_path: Path) -> None:
    """A Latin-1 file name (not UTF-8) crashed OpenCV's imread; an image one pixel high crashed
    the detector's resize; one over OpenCV's warp limit on a side crashed the reader."""
    scene, _ = render_scene([("20A12345", "one_line", "white")], rng=np.random.default_rng(7), style="test")
    ok, png = cv2.imencode(".png", scene)
    assert ok
    latin1 = os.fsencode(tmp_path) + b"/caf\xe9.png"
    Path(os.fsdecode(latin1)).write_bytes(png.tobytes())
    cv2.imwrite(str(tmp_path / "sliver.png"), np.full((1, 2000, 3), 128, np.uint8))
    cv2.imwrite(str(tmp_path / "needle.png"), np.full((40000, 16, 3), 128, np.uint8))
    (tmp_path / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(4096))
    names = [os.fsdecode(latin1), *(str(tmp_path / n) for n in ("sliver.png", "needle.png", "clip.mp4"))]

    completed = _run("--json", *names, env={"LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8"})

    lines = [json.loads(line) for line in completed.stdout.splitlines()]
    printed = [str(tmp_path) + "/caf\\xe9.png", *names[1:]]
    assert [line["image"] for line in lines] == printed, completed.stderr
    named, sliver, needle, clip = lines
    assert [p["text"] for p in named["plates"]] == ["20A12345"]
    assert sliver["plates"] == []
    assert "on a side" in needle["error"] and clip["error"] == "not a readable image"


def test_files_that_break_a_decoder_and_output_that_takes_only_ascii(tmp_path: Path) -> None:
    """Pillow's format plugins raise more than OSError for a damaged file (a DDS header of an
    unknown pixel format: NotImplementedError), which had ended the run with a traceback; and an
    output that takes only ASCII had ended it at the first Vietnamese name. Every image gets its
    line, and the lines are JSON with escapes."""
    scene, _ = render_scene([("20A12345", "one_line", "white")], rng=np.random.default_rng(7), style="test")
    cv2.imwrite(str(tmp_path / "ảnh đêm.png"), scene)
    (tmp_path / "bad.dds").write_bytes(b"DDS " + struct.pack("<7I", 124, 0x1007, 8, 8, 0, 0, 0) + bytes(200))
    names = [str(tmp_path / "bad.dds"), str(tmp_path / "ảnh đêm.png")]

    completed = _run("--json", *names, env={"PYTHONIOENCODING": "ascii"})

    assert completed.returncode == 1 and "Traceback" not in completed.stderr, completed.stderr
    assert completed.stdout.isascii()
    damaged, named = (json.loads(line) for line in completed.stdout.splitlines())
    assert damaged["image"] == names[0] and damaged["error"].startswith("not a readable image")
    assert named["image"] == names[1] and [p["text"] for p in named["plates"]] == ["20A12345"]


def test_formats_whose_decoders_hold_more_are_refused_over_their_own_limits(tmp_path: Path) -> None:
    """An AVIF or JPEG 2000 of 12 MP took the process to 353-369 MB, a GIF or WebP of 24 MP to
    352-387 (the goal: under 300): over their formats' limits they are refused, as a TIFF was."""
    from ioc.commands.anpr import MAX_PIXELS_BY_FORMAT

    names = []
    for kind, extension in (("AVIF", "avif"), ("JPEG2000", "jp2"), ("GIF", "gif"), ("WEBP", "webp"),
                            ("TIFF", "tiff")):  # fmt: skip
        width = 4000
        height = MAX_PIXELS_BY_FORMAT[kind] // width + 1
        path = tmp_path / f"large.{extension}"
        assert cv2.imwrite(str(path), np.zeros((height, width, 3), np.uint8))
        names.append(str(path))

    completed = _run("--json", *names)

    lines = [json.loads(line) for line in completed.stdout.splitlines()]
    assert [line["image"] for line in lines] == names, completed.stderr
    assert all(line["error"].startswith("image too large") for line in lines), lines


def test_an_image_piped_in_is_read_as_standard_input_or_by_its_device_name(tmp_path: Path) -> None:
    """``-`` is standard input, ``./-`` a file of that name; a pipe given by name (/dev/stdin) was
    sized from its first bytes and then opened again by OpenCV, empty by then: "cannot decode 0
    bytes". A closed standard output is no crash."""
    scene, _ = render_scene([("20A12345", "one_line", "white")], rng=np.random.default_rng(7), style="test")
    jpeg = cv2.imencode(".jpg", scene)[1].tobytes()
    (tmp_path / "-").write_bytes(jpeg)
    for name, piped in (("-", jpeg), ("/dev/stdin", jpeg), ("./-", b"")):
        completed = subprocess.run([sys.executable, "-m", "ioc", "anpr", name], input=piped, cwd=tmp_path,
                                   capture_output=True, timeout=120, check=False)  # fmt: skip
        assert completed.returncode == 0, completed.stderr
        [line] = [json.loads(text) for text in completed.stdout.splitlines()]
        assert line["image"] == name and [p["text"] for p in line["plates"]] == ["20A12345"]
    closed = subprocess.run([sys.executable, "-m", "ioc", "anpr", "./-"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=lambda: os.close(1), timeout=120, check=False)  # fmt: skip
    assert closed.returncode == 0 and b"Traceback" not in closed.stderr, closed.stderr


def test_plain_output_and_success_status(tmp_path: Path) -> None:
    crop = render_plate(
        "51F86988", layout="one_line", colour="white", rng=np.random.default_rng(2), scale=0.5
    )
    cv2.imwrite(str(tmp_path / "crop.png"), crop)
    completed = _run("--text", str(tmp_path / "crop.png"))
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(str(tmp_path / "crop.png") + ": 51F-869.88")
    plain = _run(str(tmp_path / "crop.png"))  # JSON without --json too: [--json] is the default
    assert plain.returncode == 0, plain.stderr
    [line] = [json.loads(text) for text in plain.stdout.splitlines()]
    assert [p["text"] for p in line["plates"]] == ["51F86988"]


def test_phone_photos_stored_sideways_and_grey_images_are_read_upright(tmp_path: Path) -> None:
    """A phone stores a photo as the sensor saw it and says in its EXIF orientation tag how to
    turn it; an infrared camera may write one grey channel. Both read like the upright colour image."""
    from PIL import Image

    rng = np.random.default_rng(37)
    upright, _ = render_scene([("20A12345", "one_line", "white")], rng=rng, style="test",
                              occlusion=0.0, glare=0.0)  # fmt: skip
    cv2.imwrite(str(tmp_path / "upright.jpg"), upright, [cv2.IMWRITE_JPEG_QUALITY, 95])
    sideways = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: turn 90 degrees clockwise to display
    Image.fromarray(sideways[..., ::-1]).save(tmp_path / "phone.jpg", quality=95, exif=exif.tobytes())
    cv2.imwrite(str(tmp_path / "grey.png"), cv2.cvtColor(upright, cv2.COLOR_BGR2GRAY))

    completed = _run("--json", *(str(tmp_path / name) for name in ("upright.jpg", "phone.jpg", "grey.png")))

    assert completed.returncode == 0, completed.stderr
    upright_line, phone_line, grey_line = (json.loads(line) for line in completed.stdout.splitlines())
    assert [p["text"] for p in upright_line["plates"]] == ["20A12345"]
    assert [p["text"] for p in phone_line["plates"]] == ["20A12345"]
    assert [p["text"] for p in grey_line["plates"]] == ["20A12345"]
    (x, y, w, h), (x2, y2, w2, h2) = upright_line["plates"][0]["bbox"], phone_line["plates"][0]["bbox"]
    assert abs(x - x2) <= 4 and abs(y - y2) <= 4 and w > h and w2 > h2  # the same place, upright


def test_a_large_photo_is_read_scaled_down_and_boxed_in_its_own_pixels(tmp_path: Path) -> None:
    """A 19-megapixel photo is decoded at half its size (memory), and the plate's box is
    still given in the photo's pixels, where the same scene at 1280x720 puts it 4.5 times smaller."""
    upright, _ = render_scene([("20A12345", "one_line", "white")], rng=np.random.default_rng(37),
                              style="test", occlusion=0.0, glare=0.0)  # fmt: skip
    cv2.imwrite(str(tmp_path / "small.jpg"), upright, [cv2.IMWRITE_JPEG_QUALITY, 95])
    large = cv2.resize(upright, (5760, 3240), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(tmp_path / "large.jpg"), large, [cv2.IMWRITE_JPEG_QUALITY, 90])
    del large

    completed = _run("--json", str(tmp_path / "small.jpg"), str(tmp_path / "large.jpg"))

    assert completed.returncode == 0, completed.stderr
    small_line, large_line = (json.loads(line) for line in completed.stdout.splitlines())
    assert [p["text"] for p in large_line["plates"]] == ["20A12345"]
    small_box = np.array(small_line["plates"][0]["bbox"]) * 4.5
    assert np.abs(np.array(large_line["plates"][0]["bbox"]) - small_box).max() <= 0.15 * small_box[2]


def test_an_unknown_home_province_is_a_usage_error(tmp_path: Path) -> None:
    completed = _run("--home-province", "2O", str(tmp_path / "any.jpg"))
    assert completed.returncode == 2 and "not a province code: '2O'" in completed.stderr
    assert completed.stdout == ""


def test_a_street_camera_setting_looks_closer_and_the_option_overrides_it(tmp_path: Path) -> None:
    """A near plate read sure and a far motorbike only a closer look finds (see the recogniser's
    tests): ``IOC_ANPR_LOOK_CLOSER=always`` reads both, ``--look-closer unsure`` only the near one."""
    rng = np.random.default_rng(2)
    near, _ = render_scene([("51F86988", "one_line", "white")], size=(640, 720), rng=rng, style="test",
                           occlusion=0.0, glare=0.0, plate_scale=2.0)  # fmt: skip
    far, _ = render_scene([("29X504899", "motorbike", "white")], size=(640, 720), rng=rng, style="test",
                          occlusion=0.0, glare=0.0, plate_scale=0.9)  # fmt: skip
    cv2.imwrite(str(tmp_path / "street.png"), np.hstack([near, far]))
    street = {"IOC_ANPR_LOOK_CLOSER": "always"}
    runs = (([], ["29X504899", "51F86988"]), (["--look-closer", "unsure"], ["51F86988"]))
    for options, texts in runs:
        completed = _run("--json", *options, str(tmp_path / "street.png"), env=street)
        assert completed.returncode == 0, completed.stderr
        assert sorted(p["text"] for p in json.loads(completed.stdout)["plates"]) == texts


def test_a_reader_that_goes_early_and_files_padded_far_past_their_pixels(tmp_path: Path) -> None:
    """A reader that stops early (``| head -1``) ended the command with a traceback; a small BMP
    padded with a gigabyte, or a gigabyte after a JPEG's first marker, was read into memory whole
    (1.2 GB resident). The padding is a sparse file here: it takes no disk."""
    crop = render_plate("51F86988", layout="one_line", colour="white", rng=np.random.default_rng(2),
                        scale=0.5)
    cv2.imwrite(str(tmp_path / "padded.bmp"), crop)
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8")
    for name in ("padded.bmp", "junk.jpg"):
        with open(tmp_path / name, "r+b") as file:
            file.truncate(2**30)
    names = [str(tmp_path / n) for n in ("padded.bmp", "junk.jpg")]
    piped = subprocess.run(f"{sys.executable} -m ioc anpr {' '.join(names * 20)} | head -1", shell=True,
                           capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in piped.stderr, piped.stderr
    padded, junk = (json.loads(line) for line in _run(*names).stdout.splitlines())
    assert [p["text"] for p in padded["plates"]] == ["51F86988"]
    assert "no JPEG frame header" in junk["error"]
    with pytest.MonkeyPatch.context() as patch:  # and in the process: never a whole file's bytes
        patch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"{self} read whole"))
        assert read_image(tmp_path / "padded.bmp").image.shape == crop.shape
        with pytest.raises(ValueError, match="no JPEG frame header"):
            read_image(tmp_path / "junk.jpg")
