"""One Analyzer serves every thread of an API worker: analyses running at once must neither crash nor
change each other's answers (dlib's HOG detector, shared, corrupted the heap when a clip and photos
were analysed together)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from api.domain.serializers import analysis_json
from api.engine.analyzer import AnalysisOptions, analyze_bytes
from api.engine.limits import Limits
from tests.conftest import FACES, VIDEOS


@pytest.mark.parametrize("detector", ["dlib", "opencv", "blazeface"])
def test_analyses_at_once_match_analyses_one_at_a_time(analyzer, detector):
    files = [VIDEOS / "single_face.mp4", FACES / "couple.jpg", FACES / "img25.jpg"]
    jobs = [(path.read_bytes(), AnalysisOptions(fps=5.0, detector=detector)) for path in files] * 2

    def run(job):
        data, options = job
        answer = analysis_json(analyze_bytes(analyzer, data, options, Limits()), "request", {})
        del answer["timing_ms"]
        return answer

    alone = [run(job) for job in jobs[:3]]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        together = list(pool.map(run, jobs))
    for expected, got in zip(alone * 2, together):
        assert got == expected
