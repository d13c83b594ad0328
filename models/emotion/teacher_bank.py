#!/usr/bin/env python
"""Label a fixed bank of augmented training views once with the two GPU teachers shipped as ONNX.

Why: the stored teacher logits (../shared/data/fer2013/teacher) belong to the clean image and its mirror, so a
student trained on augmented views learns from a teacher that saw a different picture, and a student trained
on the clean views alone memorises them (MODEL_CARD.md, "Distillation"). A bank of augmented views, each
labelled by `vgg_full_1.onnx` and `vgg_full_2.onnx`, is both varied and consistent: `train.py --teacher-bank`
trains on exactly these pictures with exactly these targets.

Each view is one pass of `train.augment_batch` over the whole training split, drawn from its own seed, so a
view can be rebuilt bit for bit and the bank grows one view at a time (an interrupted run keeps its views).
A view costs about 6 minutes of both cores here (two teachers at 6-7 ms per image).

    nice -n 19 /work/venv-train/bin/python models/emotion/teacher_bank.py --views 4
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from train import TEACHER_BANK, TEACHER_DIR, augment_batch, load_fer

TEACHERS = ("vgg_full_1.onnx", "vgg_full_2.onnx")
CHUNK = 256

log = logging.getLogger("teacher_bank")


def view_path(view: int) -> Path:
    return TEACHER_BANK / f"view_{view:02d}.npz"


def augmented_view(images: np.ndarray, seed: int, view: int) -> np.ndarray:
    """The whole split through augment_batch, chunk by chunk, from one seed per view (reproducible)."""
    rng = np.random.default_rng([seed, view])
    return np.concatenate([augment_batch(images[i : i + CHUNK], rng)[0] for i in range(0, len(images), CHUNK)])


def teacher_logits(session: ort.InferenceSession, images: np.ndarray) -> np.ndarray:
    """float16 (n, 7) logits; the teachers take grey in [0, 1] and normalise inside the graph."""
    out = []
    for i in range(0, len(images), CHUNK):
        gray = (images[i : i + CHUNK, None].astype(np.float32)) / 255.0
        out.append(session.run(["logits"], {"gray": gray})[0])
    return np.concatenate(out).astype(np.float16)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--views", type=int, default=4, help="how many augmented views of the training split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    images, _ = load_fer("train")
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    sessions = {name: ort.InferenceSession(str(TEACHER_DIR / name), options) for name in TEACHERS}
    digests = np.array([sha256(TEACHER_DIR / name) for name in TEACHERS])
    TEACHER_BANK.mkdir(parents=True, exist_ok=True)
    for view in range(args.views):
        if view_path(view).exists():
            log.info("view %d already labelled", view)
            continue
        started = time.time()
        views = augmented_view(images, args.seed, view)
        logits = np.stack([teacher_logits(s, views) for s in sessions.values()], axis=1)  # (n, teachers, 7)
        tmp = view_path(view).with_suffix(".tmp.npz")
        np.savez(tmp, images=views, logits=logits, seed=args.seed, teachers=digests)
        tmp.replace(view_path(view))
        log.info("view %d: %d images labelled in %.0f s", view, len(views), time.time() - started)


if __name__ == "__main__":
    main()
