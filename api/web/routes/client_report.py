"""A client's read-only view of a study's report (/r/<token>), shared by its owner from the console or the API.

The token in the address is the client's only credential: signed with the server's pepper, looked up
by its hash, refused once revoked or expired (api.domain.studies.by_report_token). The page shows the report
and its CSVs, and nothing else of the study: no participant link, no stimulus, no owner controls.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request, url_for

from api.domain import studies
from api.engine.preprocess import EMOTIONS
from api.web.context import services as current_services
from api.web.files import report_csv_response, report_pdf_response
from api.web.parsing import load
from api.web.problems import invalid_variables
from api.web.schemas import ReportQuerySchema

bp = Blueprint("client_report", __name__)

# The address is a credential: no cache keeps what is behind it, no search engine lists it.
PRIVATE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


def _report(token: str, table: str | None = None):
    """(study's name and id, report) for a live token, or None."""
    services = current_services()
    with services.db.session.begin() as session, invalid_variables():
        study = studies.by_report_token(session, token, services.settings.api_key_pepper)
        if study is None:
            return None
        report = studies.report(session, study, only=studies.report_filter(study, request.args.to_dict()))
        return {"id": study.id, "name": study.name, "sessions": {}}, report


@bp.get("/r/<token>")
def page(token: str):
    found = _report(token)
    if found is None:
        return render_template("client_report_unknown.html"), 404, PRIVATE
    study, report = found
    return (
        render_template(
            "client_report.html",
            study=study,
            report=report,
            emotions=EMOTIONS,
            page_href=lambda args: url_for("client_report.page", token=token, **args),
            csv_href=lambda args: url_for("client_report.report_csv", token=token, **args),
            pdf_href=lambda args: url_for("client_report.report_pdf", token=token, **args),
            stimulus_href=None,
        ),
        200,
        PRIVATE,
    )


@bp.get("/r/<token>/report.csv")
def report_csv(token: str):
    table = load(ReportQuerySchema(), {"table": request.args.get("table", "seconds")})["table"]
    found = _report(token)
    if found is None:
        return render_template("client_report_unknown.html"), 404, PRIVATE
    study, report = found
    response = report_csv_response(study["id"], report, table)
    response.headers.update(PRIVATE)
    return response


@bp.get("/r/<token>/report.pdf")
def report_pdf(token: str):
    found = _report(token)
    if found is None:
        return render_template("client_report_unknown.html"), 404, PRIVATE
    study, report = found
    response = report_pdf_response(study["id"], study["name"], report)
    response.headers.update(PRIVATE)
    return response
