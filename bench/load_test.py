"""Load test: minutes at a steady request rate, then an overload burst; every usage event counted.

What it does, all on this machine:
  * starts gunicorn as `bench/http_latency.py` does (2 workers, a 640x480 one-face JPEG from a
    real photo), on PostgreSQL when `--database-url` is given (a fresh database is best), else on
    the embedded SQLite file;
  * steady phase: requests *arrive* at `--rate` per second for `--minutes` (open loop: a slow
    answer does not slow the arrivals, and latency is counted from each request's scheduled
    time). Every request carries its own Idempotency-Key; a 429/503 is retried after its
    Retry-After with the same key, a dropped connection at once, so each request is answered
    once and billed once;
  * overload phase: `--overload-rate` per second for `--overload-seconds`, no retries: every
    surplus request must get a quick 503/429 with Retry-After, never a timeout or another 5xx;
  * afterwards reads the database: usage events per idempotency key. Lost = answered 200 without
    a usage event; duplicated = a key with more than one request row or event.

    python bench/load_test.py --minutes 10 --rate 12 --database-url postgresql+psycopg://postgres@127.0.0.1:5432/loadtest
    python bench/load_test.py --minutes 1 --rate 8          # a quick look on SQLite
"""

from __future__ import annotations

import argparse
import http.client
import json
import queue
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_latency import (  # noqa: E402
    DATA_DIR,
    ROOT,
    free_port,
    make_jpeg,
    multipart,
    percentile,
    rss_mib,
    start_gunicorn,
    worker_pids,
)
from machine import describe  # noqa: E402  (bench/machine.py)

CLIENT_TIMEOUT_S = 30.0
KEY_PREFIX = "load-"
SENDERS = 24  # concurrent connections: enough that arrivals never wait for a free sender at the rates used


def run_phase(
    port: int, key: str, image: bytes, rate: float, seconds: float, retry: bool, key_prefix: str = KEY_PREFIX
) -> list[dict]:
    """Requests arriving at `rate`/s for `seconds`; one record per request (not per attempt)."""
    body, content_type = multipart(image)
    arrivals: queue.Queue = queue.Queue()
    records, lock = [], threading.Lock()

    def send(connection, idempotency_key):
        connection.request(
            "POST",
            "/v1/analyze",
            body,
            {"Content-Type": content_type, "X-API-Key": key, "Idempotency-Key": idempotency_key},
        )
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("Retry-After"), response.getheader("X-Request-Id")

    def sender():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_S)
        while (item := arrivals.get()) is not None:
            scheduled, idempotency_key = item
            attempts, statuses = 0, []
            while True:
                attempts += 1
                sent = time.monotonic()
                try:
                    status, retry_after, request_id = send(connection, idempotency_key)
                except TimeoutError:
                    status, retry_after, request_id = "timeout", None, None
                except (OSError, http.client.HTTPException):
                    status, retry_after, request_id = "dropped", None, None
                statuses.append(status)
                if status in ("timeout", "dropped"):
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_S)
                if not retry or status not in (429, 503, "dropped"):
                    break
                time.sleep(float(retry_after or 0))
            done = time.monotonic()
            with lock:
                records.append(
                    {
                        "key": idempotency_key,
                        "status": status,
                        "statuses": statuses,
                        "attempts": attempts,
                        "retry_after": retry_after,
                        "request_id": request_id,
                        "latency_ms": (done - scheduled) * 1000,
                        "last_attempt_ms": (done - sent) * 1000,
                    }
                )
        connection.close()

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(SENDERS)]
    for t in threads:
        t.start()
    start = time.monotonic()
    for i in range(int(rate * seconds)):
        scheduled = start + i / rate
        time.sleep(max(0.0, scheduled - time.monotonic()))
        arrivals.put((scheduled, f"{key_prefix}{uuid.uuid4().hex}"))
    for _ in threads:
        arrivals.put(None)
    for t in threads:
        t.join()
    return records


def count_usage(database_url: str) -> dict[str, tuple[int, int]]:
    """Request rows and usage events per idempotency key of the counted phases, straight from the database."""
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import func, select

    from api.store.db import ApiRequest, Database, UsageEvent

    db = Database(database_url)
    with db.session.begin() as session:
        rows = session.execute(
            select(ApiRequest.idempotency_key, func.count(ApiRequest.id), func.count(UsageEvent.id))
            .outerjoin(UsageEvent, UsageEvent.request_id == ApiRequest.id)
            .where(ApiRequest.idempotency_key.like(f"{KEY_PREFIX}%"))
            .group_by(ApiRequest.idempotency_key)
        ).all()
    return {k: (requests, events) for k, requests, events in rows}


def summarise(name: str, records: list[dict], seconds: float) -> None:
    statuses = Counter(str(r["status"]) for r in records)
    attempts = Counter(str(s) for r in records for s in r["statuses"])
    answered = [r["latency_ms"] for r in records if r["status"] == 200]
    print(
        f"{name}: {len(records)} requests in {seconds:.0f} s; final statuses {dict(statuses)}; "
        f"all attempts {dict(attempts)}"
    )
    if answered:
        print(
            f"  answered: {len(answered) / seconds:.2f}/s, latency from scheduled arrival p50 "
            f"{percentile(answered, 0.5):.1f} ms, p95 {percentile(answered, 0.95):.1f} ms, "
            f"p99 {percentile(answered, 0.99):.1f} ms, max {max(answered):.1f} ms"
        )
    refused = [r for r in records if r["status"] in (429, 503)]
    if refused:
        quick = statistics.median(r["last_attempt_ms"] for r in refused)
        print(
            f"  refused: {len(refused)}, all with Retry-After: {all(r['retry_after'] for r in refused)}, "
            f"median time to refusal {quick:.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=12.0, help="steady arrivals per second")
    parser.add_argument("--overload-rate", type=float, default=60.0)
    parser.add_argument("--overload-seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", help="e.g. postgresql+psycopg://postgres@127.0.0.1:5432/loadtest")
    parser.add_argument("--photo", type=Path, default=DATA_DIR / "faces" / "img53.jpg")
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="emoscope-load-"))
    database_url = args.database_url or f"sqlite:///{state / 'emoscope.db'}"
    image_path = state / "face-640x480.jpg"
    make_jpeg(args.photo, image_path)
    port = free_port()
    server, key = start_gunicorn(state, port, args.workers, 1, extra_env={"DATABASE_URL": database_url})
    try:
        pids = worker_pids(server.pid)
        image = image_path.read_bytes()
        run_phase(port, key, image, 4, 5, retry=True, key_prefix="warm-up-")  # not counted
        rss_before = [rss_mib(p) for p in pids]
        steady = run_phase(port, key, image, args.rate, args.minutes * 60, retry=True)
        rss_after = [rss_mib(p) for p in pids]
        overload = run_phase(port, key, image, args.overload_rate, args.overload_seconds, retry=False)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)

    print(
        f"gunicorn {args.workers} workers on {database_url.split('://')[0]}, 640x480 one-face JPEG, "
        f"{describe()} at the end"
    )
    summarise(f"steady {args.rate:g}/s", steady, args.minutes * 60)
    summarise(f"overload {args.overload_rate:g}/s", overload, args.overload_seconds)
    five_xx = sum(1 for r in steady + overload for s in r["statuses"] if isinstance(s, int) and s >= 500 and s != 503)
    timeouts = sum(1 for r in steady + overload for s in r["statuses"] if s in ("timeout", "dropped"))
    print(f"5xx other than 503 overloaded: {five_xx}; client timeouts or dropped connections: {timeouts}")

    counted = count_usage(database_url)
    answered = [r for r in steady + overload if r["status"] == 200]
    lost = sum(1 for r in answered if counted.get(r["key"], (0, 0))[1] != 1)
    duplicated = sum(1 for requests, events in counted.values() if requests > 1 or events > 1)
    billed_failures = sum(1 for r in steady + overload if r["status"] != 200 and counted.get(r["key"], (0, 0))[1])
    events = sum(counted.get(r["key"], (0, 0))[1] for r in steady + overload)
    print(
        f"usage events: {events} for {len(answered)} answered requests; "
        f"lost {lost}, duplicated {duplicated}, failed requests billed {billed_failures}"
    )
    for pid, before, after in zip(pids, rss_before, rss_after):
        print(f"worker {pid}: RSS {before:.1f} -> {after:.1f} MiB over the steady phase ({after - before:+.1f})")
    print(
        json.dumps(
            {
                "steady_statuses": Counter(str(r["status"]) for r in steady),
                "overload_statuses": Counter(str(r["status"]) for r in overload),
                "lost": lost,
                "duplicated": duplicated,
                "other_5xx": five_xx,
                "timeouts": timeouts,
            }
        )
    )


if __name__ == "__main__":
    main()
