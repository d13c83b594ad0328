"""The participant page (/s/<token>): consent, the stimulus played while the webcam records, upload, receipt.

The token in the address is the participant's only credential. The page script reads it from the
address and sends it as a bearer token to the JSON endpoints (stimulus, sessions), like any client;
the server only looks it up here to name the study. Referrer-Policy: no-referrer (websecurity)
keeps the address from leaving with any request the page makes.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request

from api.domain import studies
from api.web.context import services as current_services

bp = Blueprint("participant", __name__)

# Stored with every session as the version of the consent text the viewer agreed to: change it
# whenever the wording in participant.html changes.
# v2: head pose (facing the screen) is kept; the withdrawal page; v3: link variables; v4: the face check's stills
CONSENT_VERSION = "2026-12-v4"
# The page's address is a credential: no cache keeps what is behind it, no search engine lists it.
PRIVATE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


@bp.get("/s/<token>")
def page(token: str):
    services = current_services()
    with services.db.session.begin() as session:
        study = studies.by_token(session, token, services.settings.api_key_pepper)
        if study is None:
            return render_template("participant_unknown.html"), 404, PRIVATE
        try:  # said before the viewer records anything, not after their upload
            studies.check_open(session, study, services.settings.study_max_sessions)
        except studies.StudyClosed:
            return render_template("participant_closed.html"), 403, PRIVATE
        try:  # the panel's variables the owner whitelisted, checked before anything is recorded
            variables = studies.link_variables(study, request.args.to_dict())
        except studies.InvalidVariables:
            return render_template("participant_bad_link.html"), 400, PRIVATE
        context = {
            "study_id": study.id,
            "study_name": study.name,
            "duration_ms": study.stimulus_duration_ms,
            "has_stimulus": study.stimulus_key is not None,
            "variables": variables,
        }
    return render_template("participant.html", consent_version=CONSENT_VERSION, **context), 200, PRIVATE


@bp.get("/s/<token>/withdraw")
def withdraw_page(token: str):
    """Where a receipt is pasted to withdraw, whenever the viewer comes back: open or closed studies alike."""
    services = current_services()
    with services.db.session.begin() as session:
        study = studies.by_token(session, token, services.settings.api_key_pepper)
        if study is None:
            return render_template("participant_unknown.html"), 404, PRIVATE
        context = {"study_id": study.id, "study_name": study.name}
    return render_template("participant_withdraw.html", **context), 200, PRIVATE
