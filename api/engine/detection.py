"""Face detection through DeepFace's detector clients, plus dlib's 5-point landmarks.

dlib runs through the objects of DeepFace's own `DlibClient` (`client.model["face_detector"]`,
its HOG detector, and `client.model["sp"]`, its 5-point shape predictor), called directly rather
than through `client.detect_faces`, which upsamples x1 (HOG over 4x the pixels) and computes
landmarks that we compute again at full resolution anyway.

Measured with `python bench/detector_settings.py --repeats 2` on the 52 real photos plus 48 frames
of the 4 real clips (2 shared cores, a training run and another benchmark beside it), faces
matched at IoU >= 0.5 with what `client.detect_faces` (upsample x1) finds on the 640 px copy:

    setting                    faces  same  missed  median ms  speed-up
    detect_faces, up x1 @640     86    86      0     104.6      1.00
    HOG up x1 @640, grey         86    86      0      75.4      1.39
    HOG up x0 @640, BGR          86    86      0      25.8      4.05
    HOG up x0 @640, grey         86    86      0      20.3      5.15
    HOG up x0 @1280, grey        86    86      0      38.1      2.74
    detect() as chosen           86    86      0      19.7      5.31   (grey, up x0, 640 px copy)

Upsampling only finds faces smaller than dlib's 80 px window: none of these pictures has one on
the 640 px copy. With every picture shrunk to half size on a grey canvas (`--shrink 0.5`), up x0
@640 misses 7 of the 86 faces, so a request whose `min_face_size` maps below 80 px on the 640 px
copy gets a larger copy (`detection_scale`), up to 1280 px, which covers what upsample x1 @640 did.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Any

import cv2
import dlib
import numpy as np
from deepface.modules import modeling

from api.engine.blazeface import BlazeFaceClient

# DeepFace's own clients, built by DeepFace; BlazeFace is ours (api/engine/blazeface.py) behind the same interface.
DEEPFACE_DETECTORS = ("dlib", "opencv")
BLAZEFACE = "blazeface"
DETECTORS = (*DEEPFACE_DETECTORS, BLAZEFACE)
# Chosen by bench/face_detection.py and its companions (models/face_detection/MODEL_CARD.md): it finds
# turned, tilted, cut-off, small and dimmed faces that dlib's HOG misses, and follows clips faster.
DEFAULT_DETECTOR = BLAZEFACE
SKIP = "skip"
# Detectors run on a downscaled copy: cost grows with pixels, and faces smaller than
# ~1/8 of a 640 px frame are found only when the request asks for them (min_face_size).
DETECT_MAX_SIDE = 640
# dlib's frontal HOG detector scans an 80x80 window over an image pyramid: it finds faces of
# about 80 px and larger in the picture it is given, never smaller ones.
HOG_WINDOW_PX = 80
# The largest copy min_face_size may ask for: the coverage of upsample x1 on the 640 px copy.
SMALL_FACE_MAX_SIDE = 1280


@dataclass
class Detection:
    box: np.ndarray  # (x, y, w, h) in source pixels
    confidence: float | None  # None: no detector ran ("skip")
    # (468, 3) in source pixels: the mesh that confirmed the face (BlazeFace). Its eyes level the face's own
    # mesh, and a face that has one is followed by the mesh in clips.
    mesh: np.ndarray | None = None


def load_detector(name: str) -> Any:
    """DeepFace's own client, built once and cached by DeepFace."""
    return modeling.build_model(task="face_detector", model_name=name)


def detection_scale(height: int, width: int, min_face_size: int = 0) -> float:
    """Scale of the copy the HOG detector runs on (1.0 = source pixels).

    A 640 px copy by default (smaller pictures are enlarged to it, so every picture is searched
    for faces down to 1/8 of its longer side). When the caller wants smaller faces
    (`min_face_size` source pixels < 80 px on that copy), the copy is enlarged until such a face
    spans the window, up to a 1280 px copy: faces down to 1/16 of the longer side, as upsampling
    x1 on the 640 px copy found.
    """
    longer = max(height, width)
    scale = DETECT_MAX_SIDE / longer
    if 0 < min_face_size and min_face_size * scale < HOG_WINDOW_PX:
        scale = min(HOG_WINDOW_PX / min_face_size, SMALL_FACE_MAX_SIDE / longer)
    return scale


# dlib's HOG detector loads each picture into a feature pyramid that it keeps inside, and OpenCV's cascade
# classifiers keep scratch buffers: two threads sharing one corrupt the heap (an API worker died when a
# clip and a photo were analysed at once). Each thread gets its own HOG detector, which is as cheap to
# build as a constant table; a client that is not `thread_safe` (OpenCV's) is serialised instead.
_per_thread = threading.local()
_shared_client_lock = threading.Lock()


def _hog(client: Any) -> Any:
    """This thread's own copy of dlib's HOG detector when `client` is DeepFace's dlib client, else None."""
    model = getattr(client, "model", None)
    if not (isinstance(model, dict) and "sp" in model):
        return None
    hog = getattr(_per_thread, "hog", None)
    if hog is None:
        hog = _per_thread.hog = dlib.get_frontal_face_detector()
    return hog


def detect(client: Any, image: np.ndarray, min_face_size: int = 0) -> list[Detection]:
    """Faces in `image` (BGR or grey), boxes in source pixels."""
    height, width = image.shape[:2]
    hog = _hog(client)
    if hog is not None:
        scale = detection_scale(height, width, min_face_size)
        # HOG on grey: the same faces as on BGR (table above), 20% less time.
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        small = _resized(gray, scale)
        rects, scores, _ = hog.run(small, 0)
        # DeepFace's convention: fHOG scores are > 0 and not capped at 1; it clips them to [0, 1].
        regions = [
            (r.left(), r.top(), r.right() - r.left(), r.bottom() - r.top(), s, None) for r, s in zip(rects, scores)
        ]
    elif isinstance(client, BlazeFaceClient):
        scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
        small = image if scale == 1.0 else client.shrink(image, (round(width * scale), round(height * scale)))
        regions = [(*face.box, face.score, face.mesh) for face in client.faces(small)]
    else:
        scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
        small = _resized(image, scale)
        if small.ndim == 2:  # clip frames are grey (media.luma); DeepFace's other clients take BGR
            small = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
        with contextlib.nullcontext() if getattr(client, "thread_safe", False) else _shared_client_lock:
            regions = [(r.x, r.y, r.w, r.h, r.confidence, None) for r in client.detect_faces(small)]
    detections = []
    for x, y, w, h, score, mesh in regions:
        x0, y0 = max(0.0, x / scale), max(0.0, y / scale)
        x1, y1 = min(width, (x + w) / scale), min(height, (y + h) / scale)
        if x1 <= x0 or y1 <= y0:
            continue
        box = np.array([x0, y0, x1 - x0, y1 - y0], np.float32)
        confidence = float(np.clip(score or 0.0, 0.0, 1.0))
        # The mesh's depth is in the units of its x and y, so all three scale alike.
        detections.append(Detection(box, confidence, None if mesh is None else mesh / scale))
    return detections


def _resized(image: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return image
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=interpolation)


class LandmarkPredictor:
    """dlib's 5-point shape predictor: a model file path, or a loaded predictor (DeepFace's `sp`)."""

    def __init__(self, model: str | dlib.shape_predictor) -> None:
        self._predictor = dlib.shape_predictor(model) if isinstance(model, str) else model

    def __call__(self, gray: np.ndarray, box: np.ndarray) -> np.ndarray:
        x, y, w, h = (int(round(v)) for v in box)
        shape = self._predictor(gray, dlib.rectangle(x, y, x + w, y + h))
        return np.array([(p.x, p.y) for p in shape.parts()], np.float32)
