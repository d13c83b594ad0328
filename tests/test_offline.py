"""No network, ever: models come from models/ and registry packages, checked against the manifest."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from api.engine.weights import WeightFile, WeightsError, load_manifest, sha256_of, verified_path
from api.wiring.config import REPO_ROOT
from tests.conftest import FACES, VIDEOS

pytestmark = pytest.mark.data

# Runs in a fresh interpreter, so nothing is cached from other tests, with every socket
# connection to a non-loopback address refused and recorded.
OFFLINE_SCRIPT = textwrap.dedent("""
    import ipaddress, socket, sys, tempfile
    from pathlib import Path
    attempts = []
    real_connect = socket.socket.connect
    def guarded_connect(self, address):
        host = address[0] if isinstance(address, tuple) else None
        if host is not None:
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = host == "localhost"
            if not loopback:
                attempts.append(address)
                raise OSError("network blocked by test")
        return real_connect(self, address)
    socket.socket.connect = guarded_connect
    real_getaddrinfo = socket.getaddrinfo
    def guarded_getaddrinfo(host, *args, **kwargs):
        if host not in (None, "localhost") and not str(host).startswith("127."):
            attempts.append(host)
            raise OSError("name resolution blocked by test")
        return real_getaddrinfo(host, *args, **kwargs)
    socket.getaddrinfo = guarded_getaddrinfo

    from api.engine.analyzer import Analyzer, AnalysisOptions, analyze_bytes
    from api.wiring.config import DEFAULT_EMOTION_MODEL, Limits
    analyzer = Analyzer(Path(tempfile.mkdtemp()), DEFAULT_EMOTION_MODEL)
    for detector in ("dlib", "opencv", "blazeface"):
        image = analyze_bytes(analyzer, Path(sys.argv[1]).read_bytes(), AnalysisOptions(detector=detector), Limits())
        assert len(image.faces) == 1, (detector, image.faces)
    clip = analyze_bytes(analyzer, Path(sys.argv[2]).read_bytes(), AnalysisOptions(fps=5), Limits())
    assert clip.tracks
    # Plain DeepFace, on the same files, finds and uses our weights instead of downloading its own.
    from deepface import DeepFace
    (result,) = DeepFace.analyze(sys.argv[1], actions=["emotion"], detector_backend="dlib", silent=True)
    assert result["dominant_emotion"] == "happy", result
    assert not attempts, attempts
    print("offline ok")
""")


def test_analysis_runs_with_the_network_blocked():
    result = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT, str(FACES / "img1.jpg"), str(VIDEOS / "single_face.mp4")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "offline ok" in result.stdout


def test_every_manifest_entry_is_present_and_matches():
    for weight in load_manifest().values():
        assert verified_path(weight).is_file()


def test_missing_weight_is_a_clear_error(tmp_path: Path):
    with pytest.raises(WeightsError, match="missing.*never downloaded"):
        verified_path(WeightFile("emotion", str(tmp_path / "absent.onnx"), "0" * 64))


def test_tampered_weight_is_refused(tmp_path: Path):
    tampered = tmp_path / "model.onnx"
    tampered.write_bytes((REPO_ROOT / "models/emotion_fer/emotion_fer.onnx").read_bytes() + b"\0")
    expected = load_manifest()["emotion_fer"].sha256
    assert sha256_of(tampered) != expected
    with pytest.raises(WeightsError, match="refusing to load"):
        verified_path(WeightFile("emotion_fer", str(tampered), expected))


def test_weights_from_an_uninstalled_package_are_a_clear_error():
    with pytest.raises(WeightsError, match="not installed"):
        WeightFile("x", "package:no_such_package_here/model.dat", "0" * 64).path  # noqa: B018  (raises)
