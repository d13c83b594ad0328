"""Settings, read only from environment variables (each has an embedded default)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from api.billing import StripeConfig
from api.metering import Plan

REPO_ROOT = Path(__file__).resolve().parent.parent
# The emotion model served unless EMOSCOPE_EMOTION_MODEL names another manifest entry.
DEFAULT_EMOTION_MODEL = "emotion"


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class Limits:
    """Checked before any pixel is decoded, so hostile files cost almost nothing."""

    max_upload_bytes: int = 50 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_image_side: int = 12_000
    max_video_seconds: float = 60.0
    max_video_frames: int = 3_600
    max_video_pixels: int = 4096 * 2160
    # An animated GIF's canvas x frames: Pillow composes each frame onto the whole canvas, about
    # 100 Mpx per second of CPU, so this bounds a GIF's decoding to a few seconds.
    max_gif_pixels: int = 250_000_000

    @classmethod
    def from_env(cls) -> "Limits":
        return cls(
            max_upload_bytes=_env_int("EMOSCOPE_MAX_UPLOAD_BYTES", cls.max_upload_bytes),
            max_image_pixels=_env_int("EMOSCOPE_MAX_IMAGE_PIXELS", cls.max_image_pixels),
            max_image_side=_env_int("EMOSCOPE_MAX_IMAGE_SIDE", cls.max_image_side),
            max_video_seconds=_env_float("EMOSCOPE_MAX_VIDEO_SECONDS", cls.max_video_seconds),
            max_video_frames=_env_int("EMOSCOPE_MAX_VIDEO_FRAMES", cls.max_video_frames),
            max_video_pixels=_env_int("EMOSCOPE_MAX_VIDEO_PIXELS", cls.max_video_pixels),
            max_gif_pixels=_env_int("EMOSCOPE_MAX_GIF_PIXELS", cls.max_gif_pixels),
        )


def default_plans() -> dict[str, Plan]:
    free_rate = _env_float("EMOSCOPE_FREE_REQUESTS_PER_SECOND", 2.0)
    paid_rate = _env_float("EMOSCOPE_PAID_REQUESTS_PER_SECOND", 20.0)
    return {
        "free": Plan("free", _env_int("EMOSCOPE_FREE_MONTHLY_UNITS", 1000), free_rate, max(1, int(free_rate * 5))),
        "paid": Plan("paid", None, paid_rate, max(1, int(paid_rate * 2))),
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
    # Signs the web console's session cookie; unset: derived from api_key_pepper (api/websecurity.py).
    session_secret: str | None = None
    # The console cookie is Secure (https only) unless plain-http loopback is configured (`make run`, tests).
    cookie_secure: bool = True

    @classmethod
    def from_env(cls) -> "Settings":
        state_dir = Path(os.environ.get("EMOSCOPE_STATE_DIR", REPO_ROOT / "var")).resolve()
        return cls(
            database_url=os.environ.get("DATABASE_URL", f"sqlite:///{state_dir / 'emoscope.db'}"),
            state_dir=state_dir,
            # The embedded default is fine on one machine; production must set its own secret.
            api_key_pepper=os.environ.get("EMOSCOPE_API_KEY_PEPPER", "embedded-default-pepper"),
            emotion_model=os.environ.get("EMOSCOPE_EMOTION_MODEL", DEFAULT_EMOTION_MODEL),
            inference_threads=_env_int("EMOSCOPE_INFERENCE_THREADS", 1),
            analysis_slots=_env_int("EMOSCOPE_ANALYSIS_SLOTS", 2),
            limits=Limits.from_env(),
            redis_url=os.environ.get("REDIS_URL") or None,
            stripe=stripe_from_env(),
            celery_broker_url=os.environ.get("CELERY_BROKER_URL") or None,
            s3_bucket=os.environ.get("S3_BUCKET") or None,
            s3_endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None,
            s3_kms_key_id=os.environ.get("S3_KMS_KEY_ID") or None,
            media_retention_hours=_env_float("EMOSCOPE_MEDIA_RETENTION_HOURS", 24.0),
            sync_max_video_seconds=_env_float("EMOSCOPE_SYNC_MAX_VIDEO_SECONDS", 20.0),
            webhook_allow_loopback=os.environ.get("EMOSCOPE_WEBHOOK_ALLOW_LOOPBACK", "").lower() == "true",
            session_secret=os.environ.get("EMOSCOPE_SESSION_SECRET") or None,
            cookie_secure=os.environ.get("EMOSCOPE_COOKIE_SECURE", "true").lower() != "false",
        )
