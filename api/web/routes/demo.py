"""The live demo page (/demo): a visitor's photo, clip or webcam picture sent to /v1/analyze by page script."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for

from api.web.context import services

bp = Blueprint("demo", __name__)


@bp.get("/")
def index():
    return redirect(url_for("demo.page"))


@bp.get("/demo")
def page():
    settings = services().settings
    return render_template(
        "demo.html",
        max_upload_mb=settings.limits.max_upload_bytes // (1024 * 1024),
        sync_max_video_seconds=settings.sync_max_video_seconds,
        dev_mode=settings.dev_mode,
    )
