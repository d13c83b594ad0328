"""The hand-labelled face boxes (bench/data/face_boxes.json) cover every photo and fit inside it.

Fast: decodes each photo once for its size, runs no detector.
"""

from __future__ import annotations

import json

import cv2
import pytest

from api.wiring.config import REPO_ROOT
from tests.conftest import FACES

pytestmark = pytest.mark.data

LABELS = REPO_ROOT / "bench" / "data" / "face_boxes.json"
KEYS = {"x", "y", "w", "h", "ignore"}


@pytest.fixture(scope="module")
def labels() -> dict:
    return json.loads(LABELS.read_text())


def test_every_photo_has_an_entry_and_every_entry_a_photo(labels):
    photos = {p.name for p in FACES.glob("*.jpg")}
    assert photos, f"no photos in {FACES}"
    assert set(labels) == photos


def test_boxes_are_well_formed_and_inside_the_picture(labels):
    for name, boxes in labels.items():
        assert isinstance(boxes, list) and boxes, f"{name}: no face boxed"
        image = cv2.imread(str(FACES / name))
        assert image is not None, name
        height, width = image.shape[:2]
        for box in boxes:
            assert KEYS <= set(box) <= KEYS | {"note"}, f"{name}: {box}"
            assert all(isinstance(box[k], int) for k in "xywh"), f"{name}: {box}"
            assert isinstance(box["ignore"], bool)
            assert box["w"] > 0 and box["h"] > 0, f"{name}: {box}"
            assert box["x"] >= 0 and box["y"] >= 0, f"{name}: {box}"
            assert box["x"] + box["w"] <= width and box["y"] + box["h"] <= height, f"{name} ({width}x{height}): {box}"


def test_the_group_selfie_has_its_seven_faces(labels):
    counted = [b for b in labels["selfie-many-people.jpg"] if not b["ignore"]]
    assert len(counted) == 7
