"""nginx in front of gunicorn: `python -m api.web.proxy` renders infra/nginx/nginx.conf.j2 and runs nginx.

nginx listens on EMOSCOPE_PROXY_BIND (0.0.0.0:8000) and forwards complete, buffered requests to
gunicorn at EMOSCOPE_BIND (127.0.0.1:8001, the image's default), which must be a loopback address: the
two share one network namespace (a compose service's, an ECS task's) and gunicorn is never reachable
from outside it. The body limit follows EMOSCOPE_MAX_UPLOAD_BYTES like the app's. nginx replaces this
process, so it receives the container's signals itself.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
from pathlib import Path

import jinja2

from api.engine.limits import Limits
from api.wiring.config import REPO_ROOT, limits_from_env

TEMPLATE = REPO_ROOT / "infra" / "nginx" / "nginx.conf.j2"
DEFAULT_LISTEN = "0.0.0.0:8000"
DEFAULT_UPSTREAM = "127.0.0.1:8001"
DEFAULT_RUN_DIR = "/tmp/nginx"


def render(listen: str, upstream: str, limits: Limits) -> str:
    host = upstream.rpartition(":")[0].strip("[]")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"EMOSCOPE_BIND={upstream}: behind nginx, gunicorn must bind a loopback address "
            "such as 127.0.0.1:8001, or slow clients can still reach it directly"
        )
    template = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    ).from_string(TEMPLATE.read_text())
    return template.render(listen=listen, upstream=upstream, client_max_body_size=limits.max_request_bytes)


def find_nginx() -> str | None:
    # Debian puts it in /usr/sbin, which an unprivileged user's PATH may lack.
    return shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin"]))


def main() -> None:
    nginx = find_nginx()
    if nginx is None:
        raise SystemExit("nginx is not installed (Debian: apt-get install nginx)")
    run_dir = Path(os.environ.get("EMOSCOPE_PROXY_DIR", DEFAULT_RUN_DIR))
    run_dir.mkdir(parents=True, exist_ok=True)
    config = run_dir / "nginx.conf"
    try:
        config.write_text(
            render(
                os.environ.get("EMOSCOPE_PROXY_BIND", DEFAULT_LISTEN),
                os.environ.get("EMOSCOPE_BIND", DEFAULT_UPSTREAM),
                limits_from_env(),
            )
        )
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    os.execv(nginx, [nginx, "-p", str(run_dir), "-c", str(config), "-e", "stderr"])


if __name__ == "__main__":
    main()
