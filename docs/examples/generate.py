"""Writes the example answers the documentation shows, from the service itself.

    python -m docs.examples.generate        (or `make docs-examples`), from the repository root

Each example is a real request through the app, which runs the served engine with its default options
and the models of models/manifest.json, on a real file of the shared data folder (EMOSCOPE_DATA_DIR,
default ../shared/data). The pages include these files (pymdownx.snippets), so they never show an answer
the service would not give. tests/test_docs.py makes the same requests and fails when an answer differs
from its file beyond `same_answer`'s rounding: after changing a model or a default, run this again and
commit the files.
"""

from __future__ import annotations

import io
import json
import math
import os
import secrets
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from emoscope import parse_analysis
from emoscope.cli import render

from api.store import repository
from api.web.app import create_app
from api.wiring.config import REPO_ROOT, Settings

EXAMPLES_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("EMOSCOPE_DATA_DIR", REPO_ROOT.parent / "shared" / "data")).resolve()

# name: (data file, extra form fields, expected status). Defaults everywhere, except what the example is about.
REQUESTS = {
    "image": ("faces/couple.jpg", {}, 200),
    "clip": ("videos/single_face.mp4", {}, 200),
    "invalid-options": ("faces/couple.jpg", {"max_faces": "500", "detector": "hog"}, 400),
}
# Measured afresh on every run, and different on every machine.
UNCOMPARED = {"timing_ms"}
# Probabilities are rounded to 4 places, points to 0.1 px; another CPU may move the last digit.
ABSOLUTE_TOLERANCE = 1e-3
RELATIVE_TOLERANCE = 1e-3


def request_id(name: str) -> str:
    """A fixed X-Request-Id per example, so its answer does not change from run to run."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"emoscope-docs-example:{name}").hex


def answers(post: Callable[[str, dict, dict], tuple[int, dict]], data_dir: Path = DATA_DIR) -> dict[str, dict]:
    """Every example's answer. `post(path, form, headers)` sends one multipart request to the app,
    with the API key (a `bytes` value is a file part), and returns its status and JSON."""
    found = {}
    for name, (file, fields, expected_status) in REQUESTS.items():
        form = {**fields, "file": (data_dir / file).read_bytes()}
        status, body = post("/v1/analyze", form, {"X-Request-Id": request_id(name)})
        if status != expected_status:
            raise RuntimeError(f"example {name!r}: expected {expected_status}, got {status}: {body}")
        found[name] = body
    return found


def same_answer(expected, actual, path: str = "$") -> list[str]:
    """Where `actual` differs from `expected`: numbers beyond the tolerances above, anything else at all
    (keys, strings, lengths, nulls). Fields in UNCOMPARED are skipped."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        if expected.keys() != actual.keys():
            return [f"{path}: keys {sorted(expected)} != {sorted(actual)}"]
        return [
            difference
            for key in expected
            if key not in UNCOMPARED
            for difference in same_answer(expected[key], actual[key], f"{path}.{key}")
        ]
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{path}: {len(expected)} items != {len(actual)}"]
        return [
            difference
            for i, (e, a) in enumerate(zip(expected, actual))
            for difference in same_answer(e, a, f"{path}[{i}]")
        ]
    numbers = (int, float)
    if (
        isinstance(expected, numbers)
        and isinstance(actual, numbers)
        and not isinstance(expected, bool)
        and not isinstance(actual, bool)
    ):
        if math.isclose(expected, actual, rel_tol=RELATIVE_TOLERANCE, abs_tol=ABSOLUTE_TOLERANCE):
            return []
    elif expected == actual and type(expected) is type(actual):
        return []
    return [f"{path}: {expected!r} != {actual!r}"]


def example_path(name: str) -> Path:
    return EXAMPLES_DIR / f"{name}.json"


# What `emoscope analyze couple.jpg` prints for the image example (the SDK's own table).
CLI_OUTPUT = EXAMPLES_DIR / "cli-image.txt"


def cli_output(image_answer: dict) -> str:
    return render(parse_analysis(image_answer), "couple.jpg") + "\n"


def write(found: dict[str, dict]) -> None:
    for name, body in found.items():
        example_path(name).write_text(json.dumps(body, indent=2) + "\n")
    CLI_OUTPUT.write_text(cli_output(found["image"]))


def main() -> None:
    with tempfile.TemporaryDirectory() as state:
        settings = Settings(
            database_url=f"sqlite:///{state}/examples.db",
            state_dir=Path(state),
            api_key_pepper=secrets.token_urlsafe(48),
        )
        app = create_app(settings)
        services = app.extensions["emoscope"]
        services.db.migrate()
        with services.db.session.begin() as session:
            account = repository.create_account(session, "documentation examples")
            _, key = repository.create_api_key(session, account, settings.api_key_pepper)
        client = app.test_client()

        def post(path: str, form: dict, headers: dict) -> tuple[int, dict]:
            form = {k: (io.BytesIO(v), "upload") if isinstance(v, bytes) else v for k, v in form.items()}
            response = client.post(path, data=form, headers={**headers, "Authorization": f"Bearer {key}"})
            return response.status_code, response.get_json()

        found = answers(post)
    write(found)
    for path in [*map(example_path, found), CLI_OUTPUT]:
        print(path.relative_to(REPO_ROOT), file=sys.stderr)


if __name__ == "__main__":
    main()
