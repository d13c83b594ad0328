"""Audience-study benchmark: simulated participants built from real faces, and report time at scale.

Part 1, the study (`--participants 20`). Each participant is a different real photo
(`../shared/data/faces`, animated by `bench/micro_clips.py`) "recorded by a webcam" while a
`--stimulus-s` (20 s) stimulus plays: the recording starts 0.3-1.5 s before playback, at 24, 25 or
30 fps, with head motion, blinks, lighting drift, sensor noise and H.264. Every viewer smiles
broadly (0.2 IOD) at the moments in `SMILES` (each within +-0.3 s), and makes a brief brow raise
(a micro-expression) at `MICRO_AT_S`; two viewers leave early. The sessions go through the real
API (an in-process app on the embedded defaults, the participant token, jobs, the analyser) and
the report's top `happy` moments are compared with the injected times: each must be found
within +-1 s.

Part 1 through Celery (`--celery --workers 1`): the same sessions, but the app sends their jobs to
Redis (`--broker`, a database number of its own, flushed first) and `--workers` Celery workers
started here as deployed (`tests/servers.py`'s `start_worker`: one prefork process each) analyse
them, finding the app's database and objects through the same environment (the state folder's SQLite
and files; DATABASE_URL or S3_BUCKET, when set in the environment, reach both, untried here). Either
way part 1 prints `throughput`, from the jobs table: sessions per worker-minute by worker busy time
(the sum of each job's started -> finished) and by wall time (first upload to last job finished,
times the worker count), and both projected to 1,000 participants (worker-minutes, and wall minutes
for the same worker count). The projection is linear: it assumes sessions as long and workers as busy.
`all_sessions_reported` checks that none was lost: no session failed, and the report's viewers plus
its low-quality sessions are all the participants. Measured 2026-12-05 on 2 CPUs (AMD EPYC) at load
averages of 6.5-7.6 (other jobs alongside), the clips rendered by this process while the workers ran,
SQLite; 1,000 participants extrapolated from the 12 measured:

    python bench/audience_study.py --participants 12 --celery --stimulus-s 20 --sessions 0
    # twice: 12 of 12 sessions reported; 3.85 and 5.05 sessions per busy worker-minute (3.79 and 4.99
    # by wall: 190 s and 144 s); 1,000: 264 and 200 worker-minutes by wall, as long on one worker
    python bench/audience_study.py --participants 12 --celery --workers 2 --stimulus-s 20 --sessions 0
    # 12 of 12; 3.31 per busy worker-minute, 3.12 by wall (116 s); 1,000: 321 worker-minutes by
    # wall, 2.7 h on two workers sharing the 2 cores
    python bench/audience_study.py --participants 12 --stimulus-s 20 --sessions 0   # in-process
    # 12 of 12; 5.57 per busy minute, 5.57 by wall (129 s, load 5.2); 1,000: 180 minutes

Part 2, report time (`--sessions 1000 --session-s 60`): that many 60 s timelines are written
straight into the database (what analysed sessions leave behind), each with a link variable (an age
band: the report breaks down by it), then GET /v1/studies/{id}/report is timed end to end through the
app (with its bands, summary, moment tests and breakdown), as CSV, filtered to one age band, and
compared (bootstrap) with an empty study.

    python bench/audience_study.py                      # both parts (~10 min here for part 1)
    python bench/audience_study.py --participants 0     # part 2 only
    python bench/audience_study.py --celery --workers 2 --sessions 0   # part 1 on Celery workers
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import redis

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import micro_clips as mc  # noqa: E402
from machine import describe  # noqa: E402  (bench/machine.py)

from tests.servers import start_worker, stop_worker  # noqa: E402

SMILES = (5.0, 14.0)  # stimulus seconds where every viewer smiles
MICRO_AT_S = 10.0
JITTER_S = 0.3
TOLERANCE_MS = 1000
AGE_BANDS = ("18-24", "25-34", "35-44", "45+")  # part 2's link variable: the report breaks down by it
CONSENT = json.dumps({"version": "bench-v1", "accepted_at": "2026-12-02T10:00:00Z"})
EXTRAPOLATE_TO = 1000  # participants: the study size the throughput is projected to


def make_app(state: Path, **env: str):
    """The app on the embedded defaults in `state`; `env` adds settings (CELERY_BROKER_URL: jobs go to
    Celery workers, which find the same database and objects through the same environment)."""
    os.environ.update(
        {
            "EMOSCOPE_DEV_MODE": "true",
            "EMOSCOPE_STATE_DIR": str(state),
            "EMOSCOPE_FREE_REQUESTS_PER_SECOND": "1000",
            "EMOSCOPE_FREE_MONTHLY_UNITS": str(10**9),
            **env,
        }
    )
    from api.web.app import create_app

    app = create_app()
    app.extensions["emoscope"].db.migrate()
    return app


def owner_key(client) -> str:
    body = {
        "email": f"bench-{time.time_ns()}@example.com",
        "password": "correct horse battery",
        "account_name": "bench",
    }
    return client.post("/v1/signup", json=body).json["api_key"]["secret"]


def participant_spec(i: int, photo: str, rng: np.random.Generator, stimulus_s: float) -> tuple[mc.ClipSpec, float]:
    fps = float(rng.choice([24.0, 25.0, 30.0]))
    lead_s = float(rng.uniform(0.3, 1.5))
    leaves = i in (3, 11)  # two early leavers
    seconds = lead_s + (stimulus_s * 0.8 if leaves else stimulus_s + 0.5)
    events = []
    for at in SMILES:
        start = lead_s + at + rng.uniform(-JITTER_S, JITTER_S)
        if start + 2.0 < seconds:
            events.append(mc.make_event(rng, "macro", start, fps, pattern="smile", amplitude="broad"))
    micro_start = lead_s + MICRO_AT_S + rng.uniform(-JITTER_S, JITTER_S)
    events.append(mc.make_event(rng, "micro", micro_start, fps, pattern="brow_raise", amplitude="high"))
    events.sort(key=lambda e: e.onset_frame)
    nuisance = mc.Nuisance(
        head_motion=float(rng.uniform(0.3, 0.8)),
        jerks_per_min=float(rng.uniform(0, 3)),
        blinks_per_min=float(rng.uniform(8, 16)),
        brightness=float(rng.uniform(0.3, 0.8)),
        noise_sigma=float(rng.uniform(1.5, 3.0)),
        crf=23,
    )
    spec = mc.ClipSpec(
        f"viewer{i:02d}",
        photo,
        fps,
        seconds,
        events,
        int(rng.integers(2**31)),
        iod=float(rng.uniform(50, 60)),
        background=i % len(mc.BACKGROUNDS),
        nuisance=nuisance,
    )
    return spec, lead_s * 1000


def run_study(participants: int, stimulus_s: float, seed: int, broker: str | None = None, workers: int = 1) -> dict:
    """`broker` (a Redis URL): the sessions' jobs run on `workers` Celery workers started here, as
    deployed; None: on the app's in-process queue (one job at a time)."""
    rng = np.random.default_rng(seed)
    photos = [p.name for p in mc.eligible_photos()]
    if len(photos) < participants:
        sys.exit(f"only {len(photos)} usable photos for {participants} participants")
    rng.shuffle(photos)
    state = Path(tempfile.mkdtemp(prefix="emoscope-study-"))
    if broker is None:
        app, started_workers = make_app(state), []
    else:
        redis.Redis.from_url(broker).flushdb()  # no task left from an interrupted run
        app = make_app(state, CELERY_BROKER_URL=broker)
        started_workers = [start_worker(dict(os.environ), f"bench{w}") for w in range(workers)]
    try:
        return study_results(app, participants, stimulus_s, rng, photos, started_workers)
    finally:
        for worker in started_workers:
            stop_worker(worker)


def study_results(app, participants: int, stimulus_s: float, rng, photos: list[str], workers: list) -> dict:
    client = app.test_client()
    key = owner_key(client)
    auth = {"Authorization": f"Bearer {key}"}
    study = client.post(
        "/v1/studies", headers=auth, json={"name": "bench ad", "stimulus_duration_ms": stimulus_s * 1000}
    ).json
    started = time.perf_counter()
    for i in range(participants):
        spec, lead_ms = participant_spec(i, photos[i], rng, stimulus_s)
        clip = mc.render_clip(spec)
        response = client.post(
            f"/v1/studies/{study['id']}/sessions",
            headers={"Authorization": f"Bearer {study['participant_token']}"},
            data={
                "file": (io.BytesIO(clip.data), "webcam.mp4"),
                "stimulus_started_ms": f"{lead_ms:.1f}",
                "consent": CONSENT,
                "segment": "early" if i % 2 else "late",
            },
        )
        if response.status_code != 202:
            sys.exit(f"session {i} refused: {response.status_code} {response.get_data(as_text=True)}")
    while True:
        counts = client.get(f"/v1/studies/{study['id']}", headers=auth).json["sessions"]
        if counts["processing"] == 0:
            break
        if any(worker.poll() is not None for worker in workers):
            sys.exit("a Celery worker exited before the sessions were analysed")
        time.sleep(1.0)
    analysed_s = time.perf_counter() - started
    report = client.get(f"/v1/studies/{study['id']}/report", headers=auth).json
    happy = [m for m in report["top_moments"] if m["emotion"] == "happy"]
    tests = smile_tests(app, study["id"], stimulus_s)
    found = {at: min((abs(m["time_ms"] - at * 1000) for m in happy), default=None) for at in SMILES}
    micro_second = report["buckets"][int(MICRO_AT_S)]["micro_expressions"]
    curve = [b["emotions"]["happy"]["mean"] if b["emotions"] else None for b in report["buckets"]]
    return {
        "participants": participants,
        "sessions": counts,
        "all_sessions_reported": counts["failed"] == 0
        and report["viewers"] + report["low_quality_sessions"] == participants,
        "seconds_to_analyse_all": round(analysed_s, 1),
        "throughput": throughput(app, study["id"], workers),
        "viewers_per_second": [b["viewers"] for b in report["buckets"]],
        "happy_mean_per_second": curve,
        "top_moments": report["top_moments"],
        "injected_smiles_s": list(SMILES),
        "smile_found_within_ms": {str(k): v for k, v in found.items()},
        "happy_tests_at_injected_smiles": tests,
        "all_smiles_within_1s": all(v is not None and v <= TOLERANCE_MS for v in found.values()),
        "micro_expressions_in_second_%d" % int(MICRO_AT_S): micro_second,
        "micro_expressions_per_second": [sum(b["micro_expressions"].values()) for b in report["buckets"]],
    }


def throughput(app, study_id: str, workers: list) -> dict:
    """Sessions per worker-minute, from the jobs table: worker busy time is the sum over the sessions' jobs
    of started -> finished (the analysis, not the wait in the queue); wall time runs from the first upload
    (the first job created) to the last job finished, times the worker count. The projection to
    EXTRAPOLATE_TO participants assumes sessions as long, and W workers that each keep as busy. No Celery
    `workers`: the app's in-process queue, one job at a time, counts as one worker."""
    from sqlalchemy import select

    from api.store.db import Job, StudySession

    with app.extensions["emoscope"].db.session.begin() as session:
        jobs = session.execute(
            select(Job.created_at, Job.started_at, Job.finished_at)
            .join(StudySession, Job.study_session_id == StudySession.id)
            .where(StudySession.study_id == study_id)
        ).all()
    busy_s = sum((finished - started).total_seconds() for _, started, finished in jobs)
    wall_s = (max(f for _, _, f in jobs) - min(c for c, _, _ in jobs)).total_seconds()
    count = max(len(workers), 1)
    per_busy_minute = len(jobs) / (busy_s / 60)
    per_wall_minute = len(jobs) / (wall_s * count / 60)
    return {
        "job_path": "Celery workers on Redis" if workers else "in-process queue",
        "workers": count,
        "jobs": len(jobs),
        "worker_busy_s": round(busy_s, 1),
        "sessions_per_worker_minute_busy": round(per_busy_minute, 3),
        "wall_s_first_upload_to_last_job_done": round(wall_s, 1),
        "sessions_per_worker_minute_wall": round(per_wall_minute, 3),
        f"extrapolated_to_{EXTRAPOLATE_TO}_from_{len(jobs)}_measured": {
            "worker_minutes_busy": round(EXTRAPOLATE_TO / per_busy_minute, 1),
            "worker_minutes_wall": round(EXTRAPOLATE_TO / per_wall_minute, 1),
            f"wall_minutes_with_{count}_workers": round(EXTRAPOLATE_TO / per_wall_minute / count, 1),
        },
    }


def smile_tests(app, study_id: str, stimulus_s: float) -> dict:
    """The happy moment test at each injected smile, significant or not: how far a study this size is from
    telling the smile from chance after the correction over every (second, expression) tested."""
    from api.domain import audience
    from api.store.db import StudySession

    with app.extensions["emoscope"].db.session.begin() as session:
        rows = (
            session.query(StudySession.timeline, StudySession.micro_onsets, StudySession.segment)
            .filter_by(study_id=study_id, status="succeeded")
            .all()
        )
    n = audience.grid_size(stimulus_s * 1000)
    tests = audience.audience_moment_tests(
        [audience.SessionTimeline.from_bytes(t, n, json.loads(m), s) for t, m, s in rows], stimulus_s * 1000
    )
    j = audience.EXPRESSIVE_EMOTIONS.index("happy")
    out = {}
    for at in SMILES:
        (k,) = np.flatnonzero(tests.seconds == int(at))
        out[str(at)] = {
            "lift": round(float(tests.lift[k, j]), 4),
            "p": float(f"{tests.p[k, j]:.3g}"),
            "p_adjusted": float(f"{tests.adjusted[k, j]:.3g}"),
            "viewers": int(tests.viewers[k]),
        }
    smallest = np.argsort(tests.p[:, j])[: len(SMILES)]
    out["seconds_with_the_smallest_happy_p"] = sorted(int(tests.seconds[k]) for k in smallest)
    out["pairs_tested"] = int(tests.p.size)
    return out


def run_report_scale(sessions: int, session_s: float, seed: int) -> dict:
    from api.domain import audience
    from api.engine.preprocess import EMOTIONS
    from api.store.db import Study, StudySession, utcnow

    rng = np.random.default_rng(seed)
    app = make_app(Path(tempfile.mkdtemp(prefix="emoscope-report-")))
    client = app.test_client()
    key = owner_key(client)
    auth = {"Authorization": f"Bearer {key}"}
    study_id = client.post(
        "/v1/studies",
        headers=auth,
        json={"name": "scale", "stimulus_duration_ms": session_s * 1000, "variables": ["age"]},
    ).json["id"]
    n = audience.grid_size(session_s * 1000)
    db = app.extensions["emoscope"].db
    written = time.perf_counter()
    with db.session.begin() as session:
        study = session.get(Study, study_id)
        for i in range(sessions):
            logits = rng.normal(0, 1, (n, len(EMOTIONS))).astype(np.float32)
            p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            recorded = np.arange(n) < n - int(rng.integers(0, n // 4)) if i % 10 == 0 else np.ones(n, bool)
            visible = recorded & (rng.random(n) > 0.1)
            p[~visible] = np.nan
            onsets = [(float(rng.uniform(0, session_s * 1000)), str(rng.choice(EMOTIONS))) for _ in range(3)]
            age = AGE_BANDS[i % len(AGE_BANDS)]
            timeline = audience.SessionTimeline(
                recorded, visible, visible, p, onsets, "a" if i % 2 else "b", {"age": age}
            )
            session.add(
                StudySession(
                    id=f"ses_scale_{i}",
                    study_id=study.id,
                    receipt_hash=f"scale-{i}",
                    status="succeeded",
                    stimulus_started_ms=0,
                    consent_version="bench",
                    consented_at=utcnow(),
                    segment=timeline.segment,
                    timeline=timeline.to_bytes(),
                    micro_onsets=json.dumps(onsets),
                    variables=json.dumps(timeline.variables),
                )
            )
    written = time.perf_counter() - written
    times = []
    for _ in range(3):
        t = time.perf_counter()
        response = client.get(f"/v1/studies/{study_id}/report", headers=auth)
        times.append(time.perf_counter() - t)
        assert response.status_code == 200 and response.json["viewers"] == sessions
    csv_t = time.perf_counter()
    client.get(f"/v1/studies/{study_id}/report", headers={**auth, "Accept": "text/csv"})
    csv_t = time.perf_counter() - csv_t
    filtered_t = time.perf_counter()
    filtered = client.get(f"/v1/studies/{study_id}/report?segment.age={AGE_BANDS[0]}", headers=auth)
    filtered_t = time.perf_counter() - filtered_t
    assert filtered.json["viewers"] == sessions // len(AGE_BANDS)
    compare_id = client.post(
        "/v1/studies", headers=auth, json={"name": "scale b", "stimulus_duration_ms": session_s * 1000}
    ).json["id"]
    compare_t = time.perf_counter()
    compared = client.get(f"/v1/studies/compare?ids={study_id},{compare_id}", headers=auth)
    compare_t = time.perf_counter() - compare_t
    assert compared.status_code == 200
    return {
        "sessions": sessions,
        "session_seconds": session_s,
        "seconds_to_write": round(written, 1),
        "report_seconds": [round(t, 3) for t in times],
        "report_seconds_median": round(float(np.median(times)), 3),
        "csv_report_seconds": round(csv_t, 3),
        "filtered_report_seconds": round(filtered_t, 3),
        "compare_with_an_empty_study_seconds": round(compare_t, 3),
        "target_seconds": 1.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=20)
    parser.add_argument("--stimulus-s", type=float, default=20.0)
    parser.add_argument("--celery", action="store_true", help="part 1's jobs on Celery workers (Redis broker)")
    parser.add_argument("--workers", type=int, default=1, help="Celery workers to start with --celery")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/13", help="with --celery; flushed first")
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--session-s", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    results = {}
    if args.participants:
        broker = args.broker if args.celery else None
        results["study"] = run_study(args.participants, args.stimulus_s, args.seed, broker, args.workers)
    if args.sessions:
        results["report_scale"] = run_report_scale(args.sessions, args.session_s, args.seed)
    results["machine"] = describe()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
