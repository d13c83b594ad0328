"""What the analysis and the jobs count for Prometheus (the HTTP metrics are api.web.observability's). No Flask here."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

STAGE = Histogram(
    "emoscope_inference_seconds",
    "Time per analysis stage",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30),
)
FACES = Histogram(
    "emoscope_faces_per_request",
    "Faces found per analysed image or clip",
    buckets=(0, 1, 2, 3, 5, 10, 20, 50, 100, 1000),
)
JOBS_QUEUED = Counter("emoscope_jobs_submitted_total", "Jobs accepted for asynchronous analysis")


def observe_analysis(timing_ms: dict[str, float], faces: int) -> None:
    for stage, ms in timing_ms.items():
        if stage != "total":
            STAGE.labels(stage).observe(ms / 1000)
    FACES.observe(faces)
