"""Image latency and throughput through HTTP (gunicorn on loopback) vs plain DeepFace.analyze.

What it does, all on this machine:
  * makes a 640x480 JPEG with one face from a real photo (`--photo`, centre-cropped to 4:3);
  * starts gunicorn with `gunicorn.conf.py` (`--workers` 2, embedded defaults, a throwaway state
    dir, quota and rate limits lifted for the run) and waits for /readyz;
  * loads it from a second process (stdlib threads, one keep-alive connection each), in turns
    with plain `DeepFace.analyze(actions=["emotion"], detector_backend="dlib")` on the same JPEG
    and the same verified weights, run in two other processes:
      - latency: one request at a time (concurrency 1) -> p50/p95 end to end, and DeepFace's
        per-image p50/p95 in its own process;
      - throughput: `--requests` at `--concurrency` (2 workers x 2 analysis slots) -> images/s,
        and DeepFace in 2 processes at once (one per core, like our 2 workers) -> images/s;
  * reads each worker's resident memory (VmRSS) after warm-up, every ~10 s, and at the end.
A 503 `overloaded` (a worker's analysis slots were both busy) or a dropped connection is counted,
and the request is sent again at once on a new connection, so images/s counts only answered
images. Worker crashes or timeouts found in gunicorn's log are reported.

    python bench/http_latency.py                    # ~2-3 minutes: 2,000 requests
    python bench/http_latency.py --requests 10000   # issue 7's memory figure
    python bench/http_latency.py --baseline-root /tmp/base   # also an older engine, in turns
    python bench/http_latency.py --detector blazeface --baseline-detector dlib   # two detectors, in turns
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from machine import describe  # bench/machine.py

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("EMOSCOPE_DATA_DIR", ROOT.parent / "shared" / "data"))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def make_jpeg(photo: Path, out: Path) -> None:
    """640x480 JPEG (quality 90): the photo scaled to cover 640x480, then centre-cropped."""
    from PIL import Image, ImageOps

    with Image.open(photo) as image:
        ImageOps.fit(ImageOps.exif_transpose(image).convert("RGB"), (640, 480), Image.LANCZOS).save(
            out, "JPEG", quality=90
        )


# --- load generator (second process) ----------------------------------------------------------


def multipart(image: bytes, detector: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="detector"\r\n\r\n{detector}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="face.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + image
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def load(port: int, key: str, image: bytes, requests: int, concurrency: int, detector: str) -> dict:
    body, content_type = multipart(image, detector)
    headers = {"Content-Type": content_type, "X-API-Key": key}
    latencies, statuses, faces = [], {}, []
    lock = threading.Lock()
    remaining = [requests]

    def take() -> bool:
        with lock:
            if remaining[0] <= 0:
                return False
            remaining[0] -= 1
            return True

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while take():
            while True:
                started = time.perf_counter()
                try:
                    connection.request("POST", "/v1/analyze", body, headers)
                    response = connection.getresponse()
                    payload = response.read()
                    status = response.status
                except (OSError, http.client.HTTPException):  # the worker died or dropped the connection
                    status = "dropped"
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1
                if status not in (503, "dropped"):
                    break
                connection.close()  # a new connection may land on the other worker
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            with lock:
                if status == 200:
                    latencies.append(elapsed)
                    faces.append(len(json.loads(payload)["faces"]))
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {
        "seconds": time.perf_counter() - started,
        "latencies": latencies,
        "statuses": statuses,
        "faces": sorted(set(faces)),
    }


def serve_load(port: int, key: str, image_path: Path, detector: str) -> None:
    image = image_path.read_bytes()
    for line in sys.stdin:
        requests, concurrency = (int(v) for v in line.split())
        print(json.dumps(load(port, key, image, requests, concurrency, detector)), flush=True)


# --- plain DeepFace (other processes) ---------------------------------------------------------


def serve_deepface(image_path: Path, emotion_model: str) -> None:
    sys.path.insert(0, str(ROOT))
    import cv2

    from api.engine.analyzer import WEIGHT_NAMES, configure_deepface
    from api.engine.weights import prepare_deepface_home

    home = Path(tempfile.mkdtemp())
    prepare_deepface_home(home, WEIGHT_NAMES, emotion_model)
    configure_deepface(home, threads=cv2.getNumThreads())  # plain DeepFace keeps OpenCV's own pool
    from deepface import DeepFace

    def once() -> int:
        return len(
            DeepFace.analyze(
                str(image_path), actions=["emotion"], detector_backend="dlib", enforce_detection=False, silent=True
            )
        )

    once()  # model builds are not per-image costs
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        latencies, faces = [], set()
        started = time.perf_counter()
        for _ in range(int(line)):
            t = time.perf_counter()
            faces.add(once())
            latencies.append((time.perf_counter() - t) * 1000)
        print(
            json.dumps({"seconds": time.perf_counter() - started, "latencies": latencies, "faces": sorted(faces)}),
            flush=True,
        )


class Worker:
    """A helper process of this script answering one JSON line per command line."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
        )

    def send(self, command: str) -> None:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def receive(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            sys.exit(f"helper {self.process.args[2:]} exited")
        return json.loads(line)

    def ask(self, command: str) -> dict:
        self.send(command)
        return self.receive()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


# --- gunicorn and its workers' memory ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(
    state: Path, port: int, workers: int, inference_threads: int, root: Path = ROOT, extra_env: dict | None = None
) -> tuple[subprocess.Popen, str]:
    """gunicorn on embedded defaults in `state` (plus `extra_env`, e.g. DATABASE_URL), and a demo key."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("EMOSCOPE_", "STRIPE_", "CELERY_", "S3_", "SQS_"))
        and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(extra_env or {})
    env.update(
        {
            "EMOSCOPE_DEV_MODE": "true",
            "EMOSCOPE_STATE_DIR": str(state),
            "EMOSCOPE_BIND": f"127.0.0.1:{port}",
            "EMOSCOPE_WORKERS": str(workers),
            "EMOSCOPE_INFERENCE_THREADS": str(inference_threads),
            # the benchmark measures the engine and HTTP stack, not the demo plan's quota
            "EMOSCOPE_FREE_MONTHLY_UNITS": str(10**9),
            "EMOSCOPE_FREE_REQUESTS_PER_SECOND": str(10**6),
        }
    )
    out = subprocess.run(
        [sys.executable, "-m", "api.wiring.cli", "demo-key"],
        env=env,
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    key = out.split("shown once): ")[1].split()[0]
    log = (state / "gunicorn.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "api.web.app:create_app()"],
        env=env,
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"gunicorn exited:\n{(state / 'gunicorn.log').read_text()[-3000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200 and len(worker_pids(process.pid)) == workers:
                return process, key
        except OSError:
            pass
        time.sleep(0.5)
    process.kill()
    sys.exit("gunicorn did not become ready in 180 s")


def worker_pids(master: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                pids.append(int(entry))
    return sorted(pids)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class MemorySampler(threading.Thread):
    def __init__(self, pids: list[int], every_s: float = 10.0) -> None:
        super().__init__(daemon=True)
        self.pids, self.every_s, self.samples, self.stop = pids, every_s, [], threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.every_s):
            self.samples.append([rss_mib(p) for p in self.pids])


# --- the run ----------------------------------------------------------------------------------


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from api.engine.detection import DEFAULT_DETECTOR
    from api.wiring.config import DEFAULT_EMOTION_MODEL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests in the throughput phase")
    parser.add_argument("--concurrency", type=int, default=4, help="clients in the throughput phase")
    parser.add_argument("--latency-requests", type=int, default=200, help="requests one at a time")
    parser.add_argument("--deepface-images", type=int, default=20, help="DeepFace images per process and phase")
    parser.add_argument("--rounds", type=int, default=2, help="turns taken by ours and DeepFace in each phase")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--inference-threads", type=int, default=1)
    parser.add_argument("--photo", type=Path, default=DATA_DIR / "faces" / "img53.jpg")
    parser.add_argument("--emotion-model", default=DEFAULT_EMOTION_MODEL)
    parser.add_argument(
        "--baseline-root",
        type=Path,
        help="also serve the engine checked out in DIR (e.g. `git worktree add /tmp/base HEAD`) and load it in turns",
    )
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, help="the `detector` form field of every request")
    parser.add_argument(
        "--baseline-detector", help="also load the same server with this detector in turns (the baseline rows)"
    )
    parser.add_argument("--load", nargs=4, metavar=("PORT", "KEY", "IMAGE", "DETECTOR"), help=argparse.SUPPRESS)
    parser.add_argument("--deepface", type=Path, metavar="IMAGE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        return serve_load(int(args.load[0]), args.load[1], Path(args.load[2]), args.load[3])
    if args.deepface:
        return serve_deepface(args.deepface, args.emotion_model)

    state = Path(tempfile.mkdtemp(prefix="emoscope-bench-"))
    image = state / "face-640x480.jpg"
    make_jpeg(args.photo, image)
    port = free_port()
    server, key = start_gunicorn(state, port, args.workers, args.inference_threads)
    servers, loaders = [server], {"emoscope": Worker("--load", str(port), key, str(image), args.detector)}
    if args.baseline_root:
        base_state, base_port = Path(tempfile.mkdtemp(prefix="emoscope-baseline-")), free_port()
        base_server, base_key = start_gunicorn(
            base_state, base_port, args.workers, args.inference_threads, args.baseline_root.resolve()
        )
        servers.append(base_server)
        loaders["baseline"] = Worker("--load", str(base_port), base_key, str(image), args.detector)
    elif args.baseline_detector:
        loaders["baseline"] = Worker("--load", str(port), key, str(image), args.baseline_detector)
    loader = loaders["emoscope"]
    deepface = [Worker("--deepface", str(image), "--emotion-model", args.emotion_model) for _ in range(2)]
    base_latency, base_runs = [], []
    try:
        for d in deepface:
            d.receive()
        for name, each in loaders.items():
            warm = each.ask(f"{10 * args.workers} {2 * args.workers}")
            if warm["faces"] != [1] or {int(s) for s in warm["statuses"]} - {200, 503}:
                sys.exit(f"{name} warm-up answered {warm['statuses']} with faces {warm['faces']}; expected one face")
        pids = worker_pids(server.pid)
        rss_before = [rss_mib(p) for p in pids]

        ours_latency, df_latency = [], []
        for _ in range(args.rounds):
            ours_latency += loader.ask(f"{args.latency_requests // args.rounds} 1")["latencies"]
            if "baseline" in loaders:
                base_latency += loaders["baseline"].ask(f"{args.latency_requests // args.rounds} 1")["latencies"]
            df_latency += deepface[0].ask(str(max(1, args.deepface_images // args.rounds)))["latencies"]

        sampler = MemorySampler(pids)
        sampler.start()
        ours_runs, df_runs, statuses = [], [], {}
        for _ in range(args.rounds):
            run = loader.ask(f"{args.requests // args.rounds} {args.concurrency}")
            ours_runs.append(run)
            for status, n in run["statuses"].items():
                statuses[status] = statuses.get(status, 0) + n
            if "baseline" in loaders:
                base_runs.append(loaders["baseline"].ask(f"{args.requests // args.rounds} {args.concurrency}"))
            for d in deepface:  # both DeepFace processes at once
                d.send(str(max(1, args.deepface_images // args.rounds)))
            replies = [d.receive() for d in deepface]
            df_runs.append((max(r["seconds"] for r in replies), sum(len(r["latencies"]) for r in replies)))
        sampler.stop.set()
        rss_after = [rss_mib(p) for p in pids]
    finally:
        for each in loaders.values():
            each.close()
        for d in deepface:
            d.close()
        for each in servers:
            each.send_signal(signal.SIGTERM)
            try:
                each.wait(timeout=60)
            except subprocess.TimeoutExpired:
                each.kill()

    ours_ips = sum(len(r["latencies"]) for r in ours_runs) / sum(r["seconds"] for r in ours_runs)
    df_ips = sum(n for _, n in df_runs) / sum(s for s, _ in df_runs)
    df_single = 1000 / statistics.mean(df_latency)
    print(
        f"640x480 one-face JPEG from {args.photo.name} ({image.stat().st_size} bytes); gunicorn {args.workers} workers "
        f"(gthread), EMOSCOPE_INFERENCE_THREADS={args.inference_threads}; {describe()} at the end"
    )
    baseline = f"the engine in {args.baseline_root}" if args.baseline_root else f"detector={args.baseline_detector}"
    print(f"emoscope rows: detector={args.detector}" + (f"; baseline rows: {baseline}" if base_runs else ""))
    print(f"{'path':<44} {'p50 ms':>7} {'p95 ms':>7} {'images/s':>9}")
    print(
        f"{'emoscope HTTP, one request at a time':<44} {percentile(ours_latency, 0.5):>7.1f} "
        f"{percentile(ours_latency, 0.95):>7.1f} {1000 / statistics.mean(ours_latency):>9.2f}"
    )
    print(
        f"{'DeepFace.analyze in-process, one at a time':<44} {percentile(df_latency, 0.5):>7.1f} "
        f"{percentile(df_latency, 0.95):>7.1f} {df_single:>9.2f}"
    )
    all_ours = [v for r in ours_runs for v in r["latencies"]]
    print(
        f"{f'emoscope HTTP, {args.concurrency} concurrent, 2 workers':<44} {percentile(all_ours, 0.5):>7.1f} "
        f"{percentile(all_ours, 0.95):>7.1f} {ours_ips:>9.2f}"
    )
    print(f"{'DeepFace.analyze, 2 processes at once':<44} {'':>7} {'':>7} {df_ips:>9.2f}")
    if base_runs:
        base_ips = sum(len(r["latencies"]) for r in base_runs) / sum(r["seconds"] for r in base_runs)
        all_base = [v for r in base_runs for v in r["latencies"]]
        print(
            f"{'baseline HTTP, one request at a time':<44} {percentile(base_latency, 0.5):>7.1f} "
            f"{percentile(base_latency, 0.95):>7.1f} {1000 / statistics.mean(base_latency):>9.2f}"
        )
        print(
            f"{f'baseline HTTP, {args.concurrency} concurrent, 2 workers':<44} {percentile(all_base, 0.5):>7.1f} "
            f"{percentile(all_base, 0.95):>7.1f} {base_ips:>9.2f}"
        )
        print(
            f"emoscope vs baseline: p50 {percentile(base_latency, 0.5) / percentile(ours_latency, 0.5):.2f}x faster, "
            f"images/s {ours_ips / base_ips:.2f}x"
        )
    print(
        f"latency p50 ratio DeepFace/emoscope: {percentile(df_latency, 0.5) / percentile(ours_latency, 0.5):.2f}x; "
        f"sustained images/s ratio emoscope/DeepFace: {ours_ips / df_ips:.2f}x (2 workers vs 2 processes), "
        f"{ours_ips / df_single:.2f}x (vs 1 DeepFace process)"
    )
    print(
        f"statuses in the throughput phase: {dict(sorted(statuses.items()))} (503s and dropped connections were re-sent)"
    )
    crashes = [
        line
        for line in (state / "gunicorn.log").read_text().splitlines()
        if "was sent" in line or "WORKER TIMEOUT" in line
    ]
    print(
        f"emoscope worker crashes/timeouts in gunicorn's log: {len(crashes)}" + "".join(f"\n  {c}" for c in crashes[:5])
    )
    peak = [max([s[i] for s in sampler.samples] + [rss_after[i]]) for i in range(len(pids))]
    step = max(1, len(sampler.samples) // 8)
    for i, pid in enumerate(pids):
        trail = " ".join(f"{s[i]:.0f}" for s in sampler.samples[::step])
        print(
            f"worker {pid}: RSS {rss_before[i]:.1f} MiB after warm-up, {rss_after[i]:.1f} MiB after "
            f"{args.latency_requests + args.requests} more requests (peak {peak[i]:.1f}, "
            f"growth {rss_after[i] - rss_before[i]:+.1f} MiB); during the throughput phase: {trail}"
        )


if __name__ == "__main__":
    main()
