"""What `return_stills=true` adds to a clip's answer: bytes with and without, on the real clips.

python bench/stills_payload.py
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.engine.analyzer import Analyzer  # noqa: E402
from api.web.app import create_app  # noqa: E402
from api.wiring.config import DEFAULT_EMOTION_MODEL  # noqa: E402
from tests.conftest import VIDEOS, make_settings  # noqa: E402

CLIPS = [("face_noface.mov", "5"), ("face_noface.mov", "30"), ("single_face.mp4", "30")]


def main() -> None:
    state = Path(tempfile.mkdtemp())
    app = create_app(make_settings(state), analyzer=Analyzer(state / "deepface", DEFAULT_EMOTION_MODEL))
    app.extensions["emoscope"].db.migrate()
    client = app.test_client()
    key = client.post(
        "/v1/signup", json={"email": "bench@example.com", "password": "correct horse battery", "account_name": "Bench"}
    ).json["api_key"]["secret"]
    for name, fps in CLIPS:
        answers = [
            client.post(
                "/v1/analyze",
                headers={"Authorization": f"Bearer {key}"},
                data={"file": (io.BytesIO((VIDEOS / name).read_bytes()), name), "fps": fps, "return_stills": stills},
            )
            for stills in ("false", "true")
        ]
        plain, with_stills = (len(answer.data) for answer in answers)
        count = len(answers[1].json["stills"])
        print(
            f"{name} at {fps} fps: {plain} B without stills, {with_stills} B with {count} stills "
            f"({(with_stills - plain) / max(1, count) / 1024:.1f} KiB a still, x{with_stills / plain:.1f})"
        )


if __name__ == "__main__":
    main()
