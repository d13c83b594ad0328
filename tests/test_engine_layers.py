"""The engine is the ground floor: it imports nothing else of `api`, and settings pull in no Stripe or SQL code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from api.wiring.config import REPO_ROOT

ENGINE_MODULES = sorted(
    f"api.engine.{p.stem}" for p in (REPO_ROOT / "api" / "engine").glob("*.py") if p.stem != "__init__"
)


def _loaded_after(code: str) -> list[str]:
    """Module names loaded by a fresh interpreter after running `code` (from the repository root)."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])


def test_engine_modules_import_nothing_else_of_api():
    loaded = _loaded_after("\n".join(f"import {name}" for name in ENGINE_MODULES))
    outside = [m for m in loaded if m.startswith("api.") and not m.startswith("api.engine")]
    assert outside == []
    assert not {"stripe", "sqlalchemy", "flask"} & set(loaded)


def test_settings_import_neither_stripe_nor_sqlalchemy():
    loaded = set(_loaded_after("import api.wiring.config"))
    assert "stripe" not in loaded and "sqlalchemy" not in loaded


def test_weights_find_their_manifest_from_their_own_path(tmp_path):
    from api.engine import weights

    assert weights.MANIFEST_PATH == Path(weights.__file__).resolve().parents[2] / "models" / "manifest.json"
    assert weights.MANIFEST_PATH.is_file()


def test_deepface_process_settings_happen_in_one_named_call(tmp_path):
    """Linking model files changes nothing process-wide; `configure_deepface` does, and only it."""
    code = f"""
import os
from api.engine import weights
from api.engine.analyzer import WEIGHT_NAMES, configure_deepface
from api.wiring.config import DEFAULT_EMOTION_MODEL
before = {{k: os.environ.get(k) for k in ("DEEPFACE_HOME", "DEEPFACE_BACKEND_ENGINE")}}
from pathlib import Path
weights.prepare_deepface_home(Path({str(tmp_path)!r}), WEIGHT_NAMES, DEFAULT_EMOTION_MODEL)
linked = {{k: os.environ.get(k) for k in before}}
import cv2
configure_deepface(Path({str(tmp_path)!r}), threads=3)
after = {{k: os.environ.get(k) for k in before}}
print(__import__("json").dumps([before, linked, after, cv2.getNumThreads()]))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPFACE_")}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, check=True, capture_output=True, text=True
    )
    before, linked, after, threads = json.loads(out.stdout.splitlines()[-1])
    assert before == linked == {"DEEPFACE_HOME": None, "DEEPFACE_BACKEND_ENGINE": None}
    assert after == {"DEEPFACE_HOME": str(tmp_path), "DEEPFACE_BACKEND_ENGINE": "onnx"}
    assert threads == 3
