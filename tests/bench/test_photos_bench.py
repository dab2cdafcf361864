"""``ioc bench photos LABELS``: the recogniser scored against a labels file, as a province runs
it on its own cameras' photos. Generated photos stand in for real ones here; what is checked is
the bookkeeping (right, misread, plate-free, unreadable), not the recogniser's accuracy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from detectors.recognizer import PlateRecognizer
from detectors.synthetic import render_scene
from ioc.bench.photos import VARIANTS, LabelledPhoto, load_labels, variant_of


def _bench_photos(labels: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ioc", "bench", "photos", str(labels), *options],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def test_reads_are_scored_against_the_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    scene, truths = render_scene([("20A12345", "one_line", "white")], rng=rng, style="test",
                                 occlusion=0.0, glare=0.0)  # fmt: skip
    empty, _ = render_scene([], rng=rng, style="test")
    cv2.imwrite(str(tmp_path / "right.jpg"), scene, [cv2.IMWRITE_JPEG_QUALITY, 92])
    cv2.imwrite(str(tmp_path / "mislabelled.png"), scene)
    cv2.imwrite(str(tmp_path / "empty.png"), empty)
    (tmp_path / "labels.csv").write_text(
        "image,plates,notes,camera\n"
        f"right.jpg,{truths[0].text},display forms and canonical ones alike,gate-1\n"
        "mislabelled.png,99A-999.99,,gate-2\n"
        "empty.png,,plate-free,gate-1\n"
        "gone.jpg,51F86988,no such file,\n"
    )
    read = PlateRecognizer.load().recognize(cv2.imread(str(tmp_path / "right.jpg")))
    assert [plate.text for plate in read] == ["20A12345"]  # the scene is one a reader gets right

    completed = _bench_photos(tmp_path / "labels.csv")

    assert completed.returncode == 1, completed.stderr  # a photo could not be read
    lines = completed.stdout.splitlines()
    summary = json.loads(lines[-1])
    assert summary["photos"] == 4 and summary["plates"] == 2 and summary["errors"] == 1
    assert summary["look_closer"] == "unsure"  # the recogniser's default
    assert summary["accuracy"] == round(1 / 2, 4)  # right.jpg read, mislabelled.png not (gone.jpg: an error)
    assert summary["plate_free_photos"] == 1
    assert summary["unmatched_reads"] >= 1  # the mislabelled photo's read of 20A12345
    assert 0 <= summary["false_positive_photos"] <= 1
    assert summary["reads_at_0_9"] >= 1 and 0.0 <= summary["precision_at_0_9"] <= 1.0
    assert summary["ms"] > 0
    assert any(line.startswith("  missed or misread: mislabelled.png: labelled 99A99999") for line in lines)
    assert not any("right.jpg" in line for line in lines)
    assert any(line.startswith("  error: ") and "gone.jpg" in line for line in lines)
    # each named camera's own figures: its photos alone
    assert set(summary["cameras"]) == {"gate-1", "gate-2"}
    assert summary["cameras"]["gate-1"]["plates"] == 1 and summary["cameras"]["gate-1"]["accuracy"] == 1.0
    assert summary["cameras"]["gate-2"]["plates"] == 1 and summary["cameras"]["gate-2"]["accuracy"] == 0.0
    assert summary["cameras"]["gate-2"]["false_positive_photos"] == 0  # it has no plate-free photo
    assert any(line.startswith("camera gate-1: exact reads 1 of 1 (1.0)") for line in lines)


def test_variants_score_the_photos_as_other_cameras_would_give_them(tmp_path: Path) -> None:
    """``--variants``: each photo also scaled, compressed and darkened, scored on its own line and
    under ``variants`` in the summary; the photos as they are score as without the option."""
    rng = np.random.default_rng(7)
    scene, truths = render_scene([("20A12345", "one_line", "white")], rng=rng, style="test",
                                 occlusion=0.0, glare=0.0)  # fmt: skip
    empty, _ = render_scene([], rng=rng, style="test")
    cv2.imwrite(str(tmp_path / "scene.png"), scene)
    cv2.imwrite(str(tmp_path / "empty.png"), empty)
    (tmp_path / "labels.csv").write_text(f"image,plates\nscene.png,{truths[0].text}\nempty.png,\n")

    plain = _bench_photos(tmp_path / "labels.csv")
    varied = _bench_photos(tmp_path / "labels.csv", "--variants")

    assert plain.returncode == varied.returncode == 0, varied.stderr
    summary = json.loads(varied.stdout.splitlines()[-1])
    plain_summary = json.loads(plain.stdout.splitlines()[-1])
    assert "variants" not in plain_summary and plain_summary["accuracy"] == summary["accuracy"] == 1.0
    assert list(summary["variants"]) == list(VARIANTS)
    for name, scored in summary["variants"].items():
        assert scored["accuracy"] in (0.0, 1.0) and scored["false_positive_photos"] in (0, 1), name
        assert any(line.startswith(f"{name} (") for line in varied.stdout.splitlines())
    assert summary["variants"]["upscaled_1_5"]["accuracy"] == 1.0  # a clear plate, larger
    sizes = {name: variant_of(scene, name).shape for name in VARIANTS}
    assert sizes["upscaled_1_5"][:2] == (1080, 1920) and sizes["downscaled_0_75"][:2] == (540, 960)
    assert variant_of(scene, "darker_0_45").max() <= 0.45 * 255 + 1
    hazy = variant_of(scene, "hazy_0_5")
    assert hazy.min() >= 100 and hazy.max() <= 228
    bluish = variant_of(scene, "bluish")
    assert (bluish[..., 0] == scene[..., 0]).all() and bluish[..., 2].max() <= 0.6 * 255 + 1
    blurred, sharp = variant_of(scene, "motion_blur_3").astype(np.float32), scene.astype(np.float32)
    smeared = (sharp[:, :-2] + sharp[:, 1:-1] + sharp[:, 2:]) / 3  # each pixel and its row neighbours
    assert np.abs(blurred[:, 1:-1] - smeared).max() <= 1
    blurred = variant_of(scene, "motion_blur_3_vertical").astype(np.float32)
    smeared = (sharp[:-2] + sharp[1:-1] + sharp[2:]) / 3  # each pixel and its column neighbours
    assert np.abs(blurred[1:-1] - smeared).max() <= 1
    compressed = variant_of(scene, "jpeg_40")
    assert compressed.shape == scene.shape and not np.array_equal(compressed, scene)
    for degrees in (6, -6):  # the frame's centre stays, a point off it moves along the turn
        rolled = variant_of(scene, f"rolled_{degrees}")
        assert rolled.shape == scene.shape and (rolled[360, 640] == scene[360, 640]).all()
    dot = np.zeros((720, 1280, 3), np.uint8)
    dot[360, 1040] = 255  # 400 px right of the centre: turned anticlockwise, it rises by 400 sin 6
    rows, columns = np.nonzero(variant_of(dot, "rolled_6")[..., 0])
    assert abs(rows.mean() - (360 - 400 * np.sin(np.radians(6)))) < 1.5 and columns.mean() > 1030
    grey = variant_of(scene, "monochrome")
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    noisy = variant_of(scene, "noise_12").astype(np.float32)
    assert 10 < np.std(noisy - sharp) < 14 and np.array_equal(noisy, variant_of(scene, "noise_12"))


def test_labels_files_in_either_delimiter_and_their_errors(tmp_path: Path) -> None:
    tsv = tmp_path / "labels.tsv"
    rows = "image\tplates\n/elsewhere/a.jpg\t29X504899; 51F-869.88\nb.png\t\n"
    tsv.write_text("\ufeff" + rows, encoding="utf-8")  # a spreadsheet's export starts with a BOM
    elsewhere = LabelledPhoto("/elsewhere/a.jpg", Path("/elsewhere/a.jpg"), ("29X504899", "51F86988"))
    assert load_labels(tsv) == [elsewhere, LabelledPhoto("b.png", tmp_path / "b.png", ())]
    assert load_labels(tsv, Path("/photos"))[1] == LabelledPhoto("b.png", Path("/photos/b.png"), ())
    for text, reason in [
        ("photo,text\na.jpg,51F86988\n", "must name the columns image and plates"),
        ("image,plates\n,51F86988\n", "line 2: no image named"),
        ("image,plates\na.jpg,51F86988 51I12345\n", "line 2: not a Vietnamese plate: 51I12345"),
        ("image,plates\n", "no photos listed"),
    ]:
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        with pytest.raises(ValueError, match=reason):
            load_labels(bad)
    completed = _bench_photos(bad)
    assert completed.returncode == 2 and "no photos listed" in completed.stdout
