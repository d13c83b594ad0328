"""gunicorn settings; every value can be overridden from the environment.

Two processes on a 2-core machine: inference is CPU-bound and each request's models run
single-threaded (EMOSCOPE_INFERENCE_THREADS=1), so one process per core uses the CPU without
oversubscription. Each process runs at most EMOSCOPE_ANALYSIS_SLOTS (2) analyses at once, so a
slow upload or a database call overlaps with another request's inference; its other threads
(4 in all) answer health checks and owner calls at once, and refuse surplus analyses with
503 `overloaded` + Retry-After instead of letting them queue into timeouts. The app is NOT preloaded: each worker builds its own model
sessions after fork (onnxruntime and dlib objects must not be shared across a fork).
"""

import os

# Loopback only: `make run` on 127.0.0.1:8000; the image on 127.0.0.1:8001 behind nginx (api/web/proxy.py).
bind = os.environ.get("EMOSCOPE_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("EMOSCOPE_WORKERS", 2))
threads = int(os.environ.get("EMOSCOPE_THREADS", 4))
worker_class = "gthread"
preload_app = False
timeout = int(os.environ.get("EMOSCOPE_WORKER_TIMEOUT", 120))
graceful_timeout = 30
keepalive = 5
# Above nginx's limits (infra/nginx/nginx.conf.j2: 8 KiB a line, 32 KiB in all), so that nginx, which
# answers problem+json, is the one that refuses a request, never gunicorn with its HTML page: no cap on
# the number of header lines (nginx's byte limits bound it), and the longest request line gunicorn takes
# (0: 1 MiB). Without nginx (`make run`, loopback only) gunicorn's own HTML 400 remains for such requests.
limit_request_field_size = 16384
limit_request_fields = 32768
limit_request_line = 0
accesslog = "-"
# Participant tokens and receipts are in paths; this logger writes them as [redacted].
logger_class = "api.web.accesslog.RedactingLogger"

# Metrics from every worker are written here and summed at scrape time (prometheus-client's
# multiprocess mode); a worker's files are retired when it exits.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join(os.environ.get("EMOSCOPE_STATE_DIR", "var"), "metrics"))
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
for stale in os.listdir(os.environ["PROMETHEUS_MULTIPROC_DIR"]):
    os.remove(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], stale))

# JSON access log lines; no query strings or headers, so no key can leak into logs.
access_log_format = '{"time": "%(t)s", "logger": "access", "method": "%(m)s", "path": "%(U)s", "status": %(s)s, "bytes": %(B)s, "duration_ms": %(M)s, "request_id": "%({x-request-id}o)s"}'


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
