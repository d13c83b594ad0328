"""Settings, read only from environment variables (each has an embedded default, except secrets)."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from api.domain.plans import Plan, StripeConfig
from api.engine.limits import Limits

REPO_ROOT = Path(__file__).resolve().parents[2]
# Development only (`make run`, tests): without it, the service refuses to start unless its secrets are set.
DEV_MODE_VARIABLE = "EMOSCOPE_DEV_MODE"
DEV_SECRETS_FILE = "dev-secrets.json"
MIN_SECRET_LENGTH = 32
# The emotion model served unless EMOSCOPE_EMOTION_MODEL names another manifest entry.
DEFAULT_EMOTION_MODEL = "emotion"


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def limits_from_env() -> Limits:
    defaults = Limits()
    return Limits(
        max_upload_bytes=_env_int("EMOSCOPE_MAX_UPLOAD_BYTES", defaults.max_upload_bytes),
        max_image_pixels=_env_int("EMOSCOPE_MAX_IMAGE_PIXELS", defaults.max_image_pixels),
        max_image_side=_env_int("EMOSCOPE_MAX_IMAGE_SIDE", defaults.max_image_side),
        max_video_seconds=_env_float("EMOSCOPE_MAX_VIDEO_SECONDS", defaults.max_video_seconds),
        max_video_frames=_env_int("EMOSCOPE_MAX_VIDEO_FRAMES", defaults.max_video_frames),
        max_video_pixels=_env_int("EMOSCOPE_MAX_VIDEO_PIXELS", defaults.max_video_pixels),
        max_gif_pixels=_env_int("EMOSCOPE_MAX_GIF_PIXELS", defaults.max_gif_pixels),
    )


class InsecureSettings(RuntimeError):
    """A secret that production depends on is missing or weak; raised before anything is served."""


def _dev_secrets(state_dir: Path) -> dict[str, str]:
    """Random secrets kept in the state folder, so keys made by `make run` still work after a restart.

    Every gunicorn worker calls this at start: the file appears whole (a hard link of a finished
    file) or not at all, so a worker never reads half of another's secrets.
    """
    path = state_dir / DEV_SECRETS_FILE
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        draft = state_dir / f".{DEV_SECRETS_FILE}.{os.getpid()}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({name: secrets.token_urlsafe(48) for name in ("api_key_pepper", "session_secret")}, out)
        try:
            os.link(draft, path)
        except FileExistsError:  # another worker was first: use its secrets
            pass
        finally:
            draft.unlink()
    return json.loads(path.read_text())


def _secret(variable: str, name: str, state_dir: Path, dev_mode: bool) -> str:
    """A secret from the environment; in development mode a random one kept in the state folder.

    There is no embedded default: a public one would let anyone sign a console session for any owner.
    """
    value = os.environ.get(variable, "")
    if value:
        if len(value) < MIN_SECRET_LENGTH:
            raise InsecureSettings(
                f"{variable} is shorter than {MIN_SECRET_LENGTH} characters; use a random value, "
                "e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        return value
    if not dev_mode:
        raise InsecureSettings(
            f"{variable} is not set. Production needs its own random secret of at least {MIN_SECRET_LENGTH} "
            f"characters (python -c 'import secrets; print(secrets.token_urlsafe(48))'). On a development machine, "
            f"set {DEV_MODE_VARIABLE}=true to use random secrets kept in {state_dir / DEV_SECRETS_FILE}."
        )
    return _dev_secrets(state_dir)[name]


def default_plans() -> dict[str, Plan]:
    free_rate = _env_float("EMOSCOPE_FREE_REQUESTS_PER_SECOND", 2.0)
    paid_rate = _env_float("EMOSCOPE_PAID_REQUESTS_PER_SECOND", 20.0)
    megabyte = 1024 * 1024
    return {
        "free": Plan(
            "free",
            _env_int("EMOSCOPE_FREE_MONTHLY_UNITS", 1000),
            free_rate,
            max(1, int(free_rate * 5)),
            _env_float("EMOSCOPE_FREE_STUDIES_PER_HOUR", 10.0),
            _env_int("EMOSCOPE_FREE_STUDY_STORAGE_MB", 200) * megabyte,
        ),
        "paid": Plan(
            "paid",
            None,
            paid_rate,
            max(1, int(paid_rate * 2)),
            _env_float("EMOSCOPE_PAID_STUDIES_PER_HOUR", 120.0),
            _env_int("EMOSCOPE_PAID_STUDY_STORAGE_MB", 20 * 1024) * megabyte,
        ),
    }


def stripe_from_env() -> StripeConfig | None:
    """Billing is on when STRIPE_API_KEY is set; the embedded default runs without it."""
    if not os.environ.get("STRIPE_API_KEY"):
        return None
    return StripeConfig(
        api_key=os.environ["STRIPE_API_KEY"],
        price_id=os.environ.get("STRIPE_PRICE_ID", ""),
        webhook_secret=os.environ.get("STRIPE_WEBHOOK_SECRET", ""),
        meter_event_name=os.environ.get("STRIPE_METER_EVENT_NAME", "emoscope_units"),
        api_base=os.environ.get("STRIPE_API_BASE") or None,
        publishable_key=os.environ.get("STRIPE_PUBLISHABLE_KEY", ""),
        js_url=os.environ.get("STRIPE_JS_URL") or StripeConfig.js_url,
    )


@dataclass(frozen=True)
class Settings:
    database_url: str
    state_dir: Path
    api_key_pepper: str
    emotion_model: str = DEFAULT_EMOTION_MODEL
    inference_threads: int = 1
    # Analyses one worker process runs at once; further requests get 503 `overloaded` at once.
    analysis_slots: int = 2
    limits: Limits = field(default_factory=Limits)
    redis_url: str | None = None
    stripe: StripeConfig | None = None
    plans: dict[str, Plan] = field(default_factory=default_plans)
    celery_broker_url: str | None = None  # unset: jobs run in-process
    s3_bucket: str | None = None  # unset: objects in a local folder under state_dir
    s3_endpoint_url: str | None = None
    s3_kms_key_id: str | None = None
    media_retention_hours: float = 24.0
    # Clips longer than this become async jobs even when the client did not ask for one.
    sync_max_video_seconds: float = 20.0
    webhook_allow_loopback: bool = False  # tests only: lets webhooks reach http://127.0.0.1
    # Sessions one study takes at most: a leaked participant link cannot bill the owner without end.
    study_max_sessions: int = 10_000
    # Signs the web console's session cookie; unset: derived from api_key_pepper (api/web/websecurity.py).
    session_secret: str | None = None
    dev_mode: bool = False  # EMOSCOPE_DEV_MODE: random secrets in the state folder; never in production
    # The console cookie is Secure (https only) unless plain-http loopback is configured (`make run`, tests).
    cookie_secure: bool = True
    # Bearer token a Prometheus scraper sends to /metrics; unset: only direct loopback requests may scrape.
    metrics_token: str | None = None
    # Proxies in front that append to X-Forwarded-For (1 behind the ALB or nginx); 0 trusts no header,
    # since a client can write any address into it.
    trusted_proxy_hops: int = 0
    # Active (unrevoked, unexpired) keys one account may hold: rate limits are per account, and keys
    # are credentials to audit and rotate.
    max_keys_per_account: int = 50
    # How long a key issued by sign-in works (a key meant to last is created with POST /v1/keys).
    sign_in_key_hours: float = 24.0
    # Where owners reach the console: links in emails are built from it, never from a request's Host
    # header (which a client chooses, and would then receive the reset link).
    public_url: str = "http://127.0.0.1:8000"
    # Unset: emails are logged, reset links included (development only; see api/domain/mailer.py).
    smtp_url: str | None = None
    mail_from: str = "Emoscope <no-reply@localhost>"
    # The built documentation site served at /docs (`make docs` builds it there; `make run` does it first).
    docs_site_dir: Path = REPO_ROOT / "var" / "docs-site"

    @classmethod
    def from_env(cls) -> Settings:
        state_dir = Path(os.environ.get("EMOSCOPE_STATE_DIR", REPO_ROOT / "var")).resolve()
        dev_mode = os.environ.get(DEV_MODE_VARIABLE, "").lower() == "true"
        session_secret = (
            _secret("EMOSCOPE_SESSION_SECRET", "session_secret", state_dir, dev_mode)
            if os.environ.get("EMOSCOPE_SESSION_SECRET") or dev_mode
            else None
        )
        return cls(
            database_url=os.environ.get("DATABASE_URL", f"sqlite:///{state_dir / 'emoscope.db'}"),
            state_dir=state_dir,
            api_key_pepper=_secret("EMOSCOPE_API_KEY_PEPPER", "api_key_pepper", state_dir, dev_mode),
            emotion_model=os.environ.get("EMOSCOPE_EMOTION_MODEL", DEFAULT_EMOTION_MODEL),
            inference_threads=_env_int("EMOSCOPE_INFERENCE_THREADS", 1),
            analysis_slots=_env_int("EMOSCOPE_ANALYSIS_SLOTS", 2),
            limits=limits_from_env(),
            redis_url=os.environ.get("REDIS_URL") or None,
            stripe=stripe_from_env(),
            celery_broker_url=os.environ.get("CELERY_BROKER_URL") or None,
            s3_bucket=os.environ.get("S3_BUCKET") or None,
            s3_endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None,
            s3_kms_key_id=os.environ.get("S3_KMS_KEY_ID") or None,
            media_retention_hours=_env_float("EMOSCOPE_MEDIA_RETENTION_HOURS", 24.0),
            sync_max_video_seconds=_env_float("EMOSCOPE_SYNC_MAX_VIDEO_SECONDS", 20.0),
            webhook_allow_loopback=os.environ.get("EMOSCOPE_WEBHOOK_ALLOW_LOOPBACK", "").lower() == "true",
            study_max_sessions=_env_int("EMOSCOPE_STUDY_MAX_SESSIONS", 10_000),
            session_secret=session_secret,
            dev_mode=dev_mode,
            cookie_secure=os.environ.get("EMOSCOPE_COOKIE_SECURE", "true").lower() != "false",
            metrics_token=os.environ.get("EMOSCOPE_METRICS_TOKEN") or None,
            trusted_proxy_hops=_env_int("EMOSCOPE_TRUSTED_PROXY_HOPS", 0),
            max_keys_per_account=_env_int("EMOSCOPE_MAX_KEYS_PER_ACCOUNT", 50),
            sign_in_key_hours=_env_float("EMOSCOPE_SIGN_IN_KEY_HOURS", 24.0),
            public_url=os.environ.get("EMOSCOPE_PUBLIC_URL", "http://127.0.0.1:8000"),
            smtp_url=os.environ.get("EMOSCOPE_SMTP_URL") or None,
            mail_from=os.environ.get("EMOSCOPE_MAIL_FROM", "Emoscope <no-reply@localhost>"),
            docs_site_dir=Path(os.environ.get("EMOSCOPE_DOCS_SITE_DIR", REPO_ROOT / "var" / "docs-site")).resolve(),
        )
