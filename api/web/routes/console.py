"""The owner console (/console): server-rendered pages over the same functions as the JSON owner endpoints.

A signed-in owner is a session cookie holding the owner's id, obtained with the same password
check as POST /v1/signin. The console deliberately holds no API key: a bearer secret in a cookie
(signed, not encrypted) or in page script would be one stolen cookie or one XSS away from being
used elsewhere, while this session is HttpOnly, confined to /console, expires, and is re-checked
against the owners table on every request.
"""

from __future__ import annotations

from datetime import timedelta
from functools import wraps

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for

from api.domain import accounts, metering, passwords, studies
from api.domain.billing import has_live_subscription
from api.engine import media
from api.engine.preprocess import EMOTIONS
from api.store import repository
from api.store.db import Account, Owner, utcnow
from api.store.storage import undone_on_error
from api.usecases import erasure
from api.usecases.admission import admit_new_study
from api.usecases.subscriptions import subscribe_account
from api.web import credentials, websecurity
from api.web.auth import show_rate_limit
from api.web.context import configured_billing
from api.web.context import services as current_services
from api.web.credentials import check_password, create_capped_key, send_reset_link
from api.web.errors import MEDIA_STATUS, ApiError
from api.web.files import report_csv_response, report_pdf_response, stimulus_response, video_upload
from api.web.parsing import load
from api.web.problems import (
    admission_problems,
    invalid_reset_token,
    invalid_variables,
    stripe_problems,
    study_storage_problems,
)
from api.web.schemas import (
    MAX_COMPARED_STUDIES,
    SCOPES,
    CompareQuerySchema,
    KeyCreateSchema,
    NewPasswordSchema,
    PasswordResetConfirmSchema,
    PasswordResetRequestSchema,
    ReportQuerySchema,
    SignInSchema,
    SignUpSchema,
    StudyCreateSchema,
)

bp = Blueprint("console", __name__, url_prefix="/console")

USAGE_DAYS = 30


def _message(status: int, title: str, detail: str, headers: dict | None = None):
    return render_template("console/message.html", title=title, detail=detail), status, headers or {}


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    """The shared validators and guards raise problem errors; a person gets a page instead."""
    return _message(exc.status, exc.title, exc.detail, exc.headers)


@bp.errorhandler(media.MediaError)
def _media_error(exc: media.MediaError):
    """A study's stimulus the shared upload check refuses (not a video, too large)."""
    return _message(MEDIA_STATUS.get(type(exc), 422), "Media refused", str(exc))


@bp.before_request
def _check_csrf():
    if request.method not in ("GET", "HEAD", "OPTIONS") and not websecurity.csrf_valid():
        return _message(403, "This form has expired", "Reload the page and try again.")
    return None


@bp.after_request
def _no_store(response):
    # Pages show key secrets and account details: never from a cache, never on the back button.
    response.headers["Cache-Control"] = "no-store"
    return response


def signed_in(view):
    @wraps(view)
    def guarded(*args, **kwargs):
        owner_id = session.get("owner_id")
        with current_services().db.session.begin() as db_session:
            owner = db_session.get(Owner, owner_id) if owner_id is not None else None
            account = db_session.get(Account, owner.account_id) if owner is not None else None
        ended = owner.sessions_ended_at.timestamp() if owner is not None and owner.sessions_ended_at else None
        if account is None or account.id != session.get("account_id") or websecurity.session_expired(ended):
            session.clear()
            return redirect(url_for("console.sign_in_form"), 303)
        g.owner, g.account = owner, account
        return view(*args, **kwargs)

    return guarded


@bp.get("/signin")
def sign_in_form():
    return render_template("console/signin.html", email="", error=None)


@bp.post("/signin")
def sign_in():
    # Through the API's schema: an email the database cannot store (a NUL) is refused, not a 500.
    fields = load(
        SignInSchema(), {"email": request.form.get("email", ""), "password": request.form.get("password", "")}
    )
    email, password = fields["email"], fields["password"]
    with current_services().db.session.begin() as db_session:
        owner = check_password(db_session, email, password)
    if owner is None:
        return render_template("console/signin.html", email=email, error="Wrong email or password."), 401
    websecurity.start_session(owner_id=owner.id, account_id=owner.account_id)
    return redirect(url_for("console.home"), 303)


SIGN_UP_FIELDS = ("account_name", "email", "password")


@bp.get("/signup")
def sign_up_form():
    if session.get("owner_id") is not None:  # signed in already (the dashboard checks the session)
        return redirect(url_for("console.home"), 303)
    return _sign_up_page({})


@bp.post("/signup")
def sign_up():
    """The API's sign-up (same schema, password policy and per-address budget), landing on the dashboard
    with the first key shown once. A taken email is not named as such: the page would tell anyone
    which emails have accounts."""
    credentials.credentials_guard()
    form = {name: request.form.get(name, "") for name in SIGN_UP_FIELDS}
    try:
        fields = load(SignUpSchema(), form)
    except ApiError as exc:
        return _sign_up_page(form, exc.errors or {}), 400
    try:
        account, owner, key, secret = credentials.sign_up(fields["email"], fields["password"], fields["account_name"])
    except accounts.EmailTaken:
        return _sign_up_page(form, refused=True), 409
    websecurity.start_session(owner_id=owner.id, account_id=account.id)
    g.owner, g.account = owner, account
    flash(f"Welcome: the account “{account.name}” is on the {account.plan} plan. Below is its first API key.")
    # Rendered rather than redirected to, as after creating a key: the secret exists only in this response.
    return _dashboard(new_key=key, new_secret=secret), 201


def _sign_up_page(form: dict, errors: dict | None = None, refused: bool = False) -> str:
    """The form again with what was typed (never the password) and each field's refusal beside it."""
    return render_template(
        "console/signup.html",
        form={**form, "password": ""},
        errors=errors or {},
        refused=refused,
        min_length=passwords.MIN_LENGTH,
        min_distinct=passwords.MIN_DISTINCT,
    )


@bp.get("/password-reset/request")
def password_reset_request_form():
    return render_template("console/password_reset_request.html", requested=False)


@bp.post("/password-reset/request")
def password_reset_request():
    send_reset_link(load(PasswordResetRequestSchema(), {"email": request.form.get("email", "")})["email"])
    return render_template("console/password_reset_request.html", requested=True)


@bp.get("/password-reset")
def password_reset_form():
    """The page an emailed link opens (the token is in the query string, which the access log leaves out)."""
    return render_template("console/password_reset.html", token=request.args.get("token", ""))


@bp.post("/password-reset")
def password_reset():
    fields = load(
        PasswordResetConfirmSchema(),
        {"token": request.form.get("token", ""), "new_password": request.form.get("new_password", "")},
    )
    services = current_services()
    with services.db.session.begin() as db_session:
        owner = accounts.reset_password(
            db_session, fields["token"], fields["new_password"], services.settings.api_key_pepper
        )
    if owner is None:
        raise invalid_reset_token()
    session.clear()
    flash("The password is set; sign in with it.")
    return redirect(url_for("console.sign_in_form"), 303)


@bp.post("/password")
@signed_in
def change_password():
    fields = load(NewPasswordSchema(), {"new_password": request.form.get("new_password", "")})
    with current_services().db.session.begin() as db_session:
        owner = check_password(db_session, g.owner.email, request.form.get("current_password", ""))
        if owner is None:
            return _message(401, "Password not changed", "The current password was wrong.")
        accounts.set_password(db_session, owner, fields["new_password"])
    # Every session ended with the change; this browser's goes on in a fresh one.
    websecurity.start_session(owner_id=g.owner.id, account_id=g.account.id)
    flash("The password is changed; console sessions in other browsers have ended.")
    return redirect(url_for("console.home"), 303)


@bp.post("/signout")
def sign_out():
    """Ends every console session of this owner: the cookie is only signed, so a copy of it (another
    browser, or a stolen one) would otherwise stay valid until it expires."""
    owner_id = session.get("owner_id")
    if owner_id is not None and not websecurity.session_expired():
        with current_services().db.session.begin() as db_session:
            owner = db_session.get(Owner, owner_id)
            if owner is not None:
                owner.sessions_ended_at = utcnow()
    session.clear()
    return redirect(url_for("console.sign_in_form"), 303)


@bp.get("")
@signed_in
def home():
    return _dashboard()


# Addresses that only take a form's POST: a reload, the back button or a typed address asks for them
# with GET, which lands on the page the form was on rather than on a bare 405.
@bp.get("/keys")
@bp.get("/keys/<int:key_id>/revoke")
@bp.get("/password")
@bp.get("/signout")
@bp.get("/billing/subscribe")
@bp.get("/billing/portal")
@bp.get("/data/delete")
def dashboard_form_target(key_id: int | None = None):
    return redirect(url_for("console.home"), 303)


@bp.get("/studies/<study_id>/participant-token")
@bp.get("/studies/<study_id>/report-links")
@bp.get("/studies/<study_id>/report-links/<link_id>/revoke")
def study_form_target(study_id: str, link_id: str | None = None):
    return redirect(url_for("console.study_page", study_id=study_id), 303)


@bp.get("/studies/<study_id>/delete")
def deleted_study_target(study_id: str):
    return redirect(url_for("console.studies_page"), 303)


@bp.post("/keys")
@signed_in
def create_key():
    fields = load(
        KeyCreateSchema(),
        {"name": request.form.get("name", ""), "scopes": request.form.getlist("scopes") or ["analyze"]},
    )
    if not websecurity.first_submission():
        return _message(
            409,
            "This key was already created",
            "The form was sent before (a reload or a second click). The key was created the first time, "
            "and its secret was shown only then: if it was not copied, revoke that key and create another.",
        )
    with current_services().db.session.begin() as db_session:
        key, secret = create_capped_key(db_session, g.account, fields["name"], fields["scopes"])
    # Rendered here rather than redirected to: the secret exists only in this response.
    return _dashboard(new_key=key, new_secret=secret), 201


@bp.post("/keys/<int:key_id>/revoke")
@signed_in
def revoke_key(key_id: int):
    with current_services().db.session.begin() as db_session:
        key = repository.revoke_api_key(db_session, g.account.id, key_id)
    if key is None:
        return _message(404, "No such key", f"There is no key {key_id} in this account.")
    flash(f"Key emo_{key.prefix} is revoked; requests with it now get 401.")
    return redirect(url_for("console.home"), 303)


@bp.get("/billing/card")
@signed_in
def card_form():
    """The paid plan's card form: Stripe.js saves the card with a SetupIntent, then the form posts
    the payment method's id (never the card) to `subscribe`."""
    billing = configured_billing()
    if has_live_subscription(g.account):
        flash("The account is on the paid plan already; its card is managed in the Stripe customer portal.")
        return redirect(url_for("console.home"), 303)
    if not billing.config.publishable_key:
        return _message(
            409,
            "No card form on this deployment",
            "It has no Stripe publishable key (STRIPE_PUBLISHABLE_KEY); subscribe through the API: "
            "POST /v1/billing/subscription.",
        )
    with current_services().db.session.begin() as db_session:
        account = db_session.get(Account, g.account.id)
        with stripe_problems():
            client_secret = billing.card_setup_secret(account)
    page = render_template(
        "console/card.html",
        account=g.account,
        client_secret=client_secret,
        publishable_key=billing.config.publishable_key,
        stripe_js_url=billing.config.js_url,
    )
    return page, 200, {"Content-Security-Policy": websecurity.card_form_policy(billing.config.js_url)}


@bp.post("/billing/subscribe")
@signed_in
def subscribe():
    billing = configured_billing()
    payment_method = request.form.get("payment_method", "")
    if not payment_method.startswith("pm_"):
        return _message(400, "No card was saved", "Go back, enter the card again and wait for it to be checked.")
    with stripe_problems():
        status = subscribe_account(current_services().db, billing, g.account.id, payment_method)["subscription_status"]
    flash(f"The account is on the paid plan (subscription {status}): no monthly quota, usage billed by Stripe.")
    return redirect(url_for("console.home"), 303)


@bp.post("/billing/portal")
@signed_in
def billing_portal():
    billing = configured_billing()
    if g.account.stripe_customer_id is None:
        return _message(409, "No billing account yet", "The account is on the free plan and has no invoices.")
    with stripe_problems():
        url = billing.portal_url(g.account, url_for("console.home", _external=True))
    return redirect(url, 303)


@bp.post("/data/delete")
@signed_in
def delete_data():
    if request.form.get("confirm") != "yes":
        return _message(400, "Nothing deleted", "Tick the box to confirm the deletion.")
    erased = erasure.erase_account_data(current_services().jobs, g.account.id)
    flash(
        f"Studies deleted (with their stimulus and session timelines): {erased.studies_deleted}; jobs deleted "
        f"(with their media and results): {erased.jobs_deleted}; requests whose stored data was deleted: "
        f"{erased.requests_scrubbed}. Usage records are kept for invoicing."
    )
    return redirect(url_for("console.home"), 303)


def _dashboard(new_key=None, new_secret: str | None = None) -> str:
    services = current_services()
    plan = services.settings.plans[g.account.plan]
    last = utcnow().date()
    first = last - timedelta(days=USAGE_DAYS - 1)
    with services.db.session.begin() as db_session:
        keys = repository.list_api_keys(db_session, g.account.id)
        quota = metering.quota(db_session, g.account.id, plan)
        usage = metering.usage_report(db_session, g.account.id, first, last)
    return render_template(
        "console/dashboard.html",
        owner=g.owner,
        account=g.account,
        plan=plan,
        quota=quota,
        keys=keys,
        scopes=SCOPES,
        usage=usage,
        days=_every_day(usage, first, USAGE_DAYS),
        billing_enabled=services.billing is not None,
        new_key=new_key,
        new_secret=new_secret,
        card_form=services.billing is not None and bool(services.billing.config.publishable_key),
        live_subscription=has_live_subscription(g.account),
    )


def _every_day(report: dict, first, count: int) -> list[dict]:
    """The report lists only days with usage; a chart needs the empty days too."""
    by_date = {row["date"]: row for row in report["data"]}
    days = [(first + timedelta(days=i)).isoformat() for i in range(count)]
    return [by_date.get(day, {"date": day, "units": 0, "requests": 0}) for day in days]


# --- audience studies ---------------------------------------------------------------------------


@bp.get("/studies")
@signed_in
def studies_page():
    with current_services().db.session.begin() as db_session:
        pepper = current_services().settings.api_key_pepper
        rows = [studies.study_json(db_session, study, pepper) for study in studies.of_account(db_session, g.account.id)]
        keys = [key for key in repository.list_api_keys(db_session, g.account.id) if key.revoked_at is None]
    return render_template(
        "console/studies.html", account=g.account, studies=rows, keys=keys, max_compared=MAX_COMPARED_STUDIES
    )


@bp.get("/studies/compare")
@signed_in
def compare_studies_page():
    """The ticked studies (the list's checkboxes send id=…&id=…; links may say ids=a,b), the owner's own only."""
    ids = ",".join(request.args.getlist("id")) or request.args.get("ids", "")
    query = load(CompareQuerySchema(), {"ids": ids})
    with current_services().db.session.begin() as db_session:
        compared = [_owned_study(db_session, study_id) for study_id in query["ids"]]
        comparison = studies.compare(db_session, compared)
    return render_template("console/study_compare.html", comparison=comparison, emotions=EMOTIONS)


@bp.post("/studies")
@signed_in
def create_study():
    services = current_services()
    with admission_problems():
        plan, decision = admit_new_study(services, g.account)
        show_rate_limit(decision)
    variables = [v.strip() for v in request.form.get("variables", "").split(",") if v.strip()]
    fields = load(
        StudyCreateSchema(),
        {
            "name": request.form.get("name", ""),
            "variables": variables,
            "stimulus_duration_ms": _milliseconds(request.form.get("duration_s", "")),
        },
    )
    stimulus = video_upload("stimulus", required=False)
    if not websecurity.first_submission():
        return _message(
            409,
            "This study was already created",
            "The form was sent before (a reload or a second click). The study was created the first time; "
            "its page under Studies shows its participant link.",
        )
    with (
        study_storage_problems(),
        undone_on_error(services.jobs.storage) as put,
        services.db.session.begin() as db_session,
    ):
        key = _active_key(db_session, request.form.get("api_key_id", type=int))
        study, _ = studies.create(
            db_session,
            put,
            g.account.id,
            key.id,
            fields["name"],
            fields["stimulus_duration_ms"],
            stimulus,
            services.settings.api_key_pepper,
            plan.study_storage_bytes,
            variables=fields["variables"],
        )
        study_id = study.id
    return _study_page(study_id), 201


@bp.get("/studies/<study_id>")
@signed_in
def study_page(study_id: str):
    return _study_page(study_id)


@bp.get("/studies/<study_id>/report.csv")
@signed_in
def study_report_csv(study_id: str):
    table = load(ReportQuerySchema(), {"table": request.args.get("table", "seconds")})["table"]
    with current_services().db.session.begin() as db_session, invalid_variables():
        study = _owned_study(db_session, study_id)
        report = studies.report(db_session, study, only=studies.report_filter(study, request.args.to_dict()))
    return report_csv_response(study_id, report, table)


@bp.get("/studies/<study_id>/report.pdf")
@signed_in
def study_report_pdf(study_id: str):
    with current_services().db.session.begin() as db_session, invalid_variables():
        study = _owned_study(db_session, study_id)
        report = studies.report(db_session, study, only=studies.report_filter(study, request.args.to_dict()))
        name = study.name
    return report_pdf_response(study_id, name, report)


@bp.get("/studies/<study_id>/stimulus")
@signed_in
def study_stimulus(study_id: str):
    services = current_services()
    with services.db.session.begin() as db_session:
        study = _owned_study(db_session, study_id)
        key, content_type = study.stimulus_key, study.stimulus_content_type
    if key is None:
        return _message(404, "No stimulus", "This study has no stored stimulus video.")
    return stimulus_response(services.jobs.storage.get(key), content_type)


@bp.post("/studies/<study_id>/participant-token")
@signed_in
def rotate_participant_link(study_id: str):
    """A new participant link; the old one stops working. The study stays metered against its key."""
    services = current_services()
    with services.db.session.begin() as db_session:
        study = _owned_study(db_session, study_id)
        studies.rotate_token(study, study.api_key_id, services.settings.api_key_pepper)
    flash("The participant link is new: the old one no longer works.")
    return redirect(url_for("console.study_page", study_id=study_id), 303)


@bp.post("/studies/<study_id>/report-links")
@signed_in
def create_report_link(study_id: str):
    """A read-only report link for the owner's client (30 days); the study page lists it to copy or revoke."""
    services = current_services()
    if not websecurity.first_submission():
        return redirect(url_for("console.study_page", study_id=study_id, _anchor="sharing"), 303)
    with services.db.session.begin() as db_session:
        studies.create_report_link(db_session, _owned_study(db_session, study_id), services.settings.api_key_pepper)
    flash(f"A new client link is ready below; it works for {studies.REPORT_LINK_DAYS} days unless you revoke it.")
    return redirect(url_for("console.study_page", study_id=study_id, _anchor="sharing"), 303)


@bp.post("/studies/<study_id>/report-links/<link_id>/revoke")
@signed_in
def revoke_report_link(study_id: str, link_id: str):
    with current_services().db.session.begin() as db_session:
        if studies.revoke_report_link(db_session, _owned_study(db_session, study_id), link_id) is None:
            raise ApiError(404, "not_found", "No such link", f"This study has no client link {link_id}.")
    flash("The client link is revoked: it no longer opens the report.")
    return redirect(url_for("console.study_page", study_id=study_id, _anchor="sharing"), 303)


@bp.post("/studies/<study_id>/delete")
@signed_in
def delete_study(study_id: str):
    services = current_services()
    with services.db.session.begin() as db_session:
        study = _owned_study(db_session, study_id)
        name, stale = study.name, studies.delete(db_session, study)
    for key in stale:
        services.jobs.storage.delete(key)
    flash(f"Study “{name}” is deleted, with its stimulus and every session's timeline; its link no longer works.")
    return redirect(url_for("console.studies_page"), 303)


def _owned_study(db_session, study_id: str):
    study = studies.find(db_session, g.account.id, study_id)
    if study is None:
        raise ApiError(404, "not_found", "No such study", f"There is no study {study_id} in this account.")
    return study


def _active_key(db_session, key_id: int | None):
    """The key a study's sessions are metered against (the API uses the key that creates the study)."""
    key = next(
        (k for k in repository.list_api_keys(db_session, g.account.id) if k.id == key_id and k.revoked_at is None), None
    )
    if key is None:
        raise ApiError(
            400, "invalid_request", "No key chosen", "Choose an active API key to meter the study's sessions against."
        )
    return key


def _milliseconds(seconds: str):
    """The form asks for seconds; the schema, shared with the API, checks milliseconds."""
    try:
        return float(seconds) * 1000
    except ValueError:
        return seconds  # not a number: the schema says so


def _study_page(study_id: str) -> str:
    """The study's page; `segment.<key>=<value>` in the address filters its report, like the API's."""
    with current_services().db.session.begin() as db_session, invalid_variables():
        study = _owned_study(db_session, study_id)
        body = studies.study_json(db_session, study, current_services().settings.api_key_pepper)
        report = studies.report(db_session, study, only=studies.report_filter(study, request.args.to_dict()))
        pepper = current_services().settings.api_key_pepper
        links = [
            {**studies.report_link_json(link, pepper), "live": link.revoked_at is None and link.expires_at > utcnow()}
            for link in studies.report_links(db_session, study)
        ]
    for link in links:
        link["url"] = url_for("client_report.page", token=link["token"], _external=True)
    token = body["participant_token"]
    participant_url = url_for("participant.page", token=token, _external=True) if token else None
    return render_template(
        "console/study.html",
        study=body,
        report=report,
        emotions=EMOTIONS,
        participant_url=participant_url,
        report_links=links,
        page_href=lambda args: url_for("console.study_page", study_id=study_id, **args),
        csv_href=lambda args: url_for("console.study_report_csv", study_id=study_id, **args),
        pdf_href=lambda args: url_for("console.study_report_pdf", study_id=study_id, **args),
        stimulus_href=url_for("console.study_stimulus", study_id=study_id) if body["has_stimulus"] else None,
    )
