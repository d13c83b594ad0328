"""Request schemas, mirroring openapi.yaml's AnalyzeOptions and AnalyzeJsonRequest."""

from __future__ import annotations

import re
from datetime import UTC

from marshmallow import Schema, ValidationError, fields, post_load, pre_load, validate, validates_schema

from api.domain import passwords, studies
from api.domain.audience import CSV_TABLES, GRID_MS
from api.engine.detection import DEFAULT_DETECTOR, DETECTORS, SKIP
from api.engine.media import MAX_SAMPLE_FPS

# NUL is refused by PostgreSQL, a lone surrogate cannot be encoded for SQLite: neither is text anyone means.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class StrictSchema(Schema):
    """Refuses NUL and lone surrogates anywhere in a field's value (nested JSON included), naming the field."""

    @pre_load
    def _storable_text(self, data, **_kwargs):
        if not isinstance(data, dict):
            return data  # marshmallow answers "Invalid input type"
        errors = {
            name: ["Contains a NUL character or a lone surrogate."]
            for name, value in data.items()
            if _unstorable(name) or _unstorable(value)
        }
        if errors:
            raise ValidationError(errors)
        return data


def _unstorable(value) -> bool:
    pending = [value]  # a walk without recursion: the value may nest as deep as the JSON decoder allows
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if UNSTORABLE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


class MicroExpressionOptionsSchema(StrictSchema):
    enabled = fields.Boolean(load_default=True)
    sensitivity = fields.Float(load_default=0.5, validate=validate.Range(0.0, 1.0))


class AnalyzeOptionsSchema(StrictSchema):
    detector = fields.String(load_default=DEFAULT_DETECTOR, validate=validate.OneOf([*DETECTORS, SKIP]))
    min_face_size = fields.Integer(load_default=0, validate=validate.Range(0, 10_000))
    max_faces = fields.Integer(load_default=20, validate=validate.Range(1, 100))
    return_landmarks = fields.Boolean(load_default=True)
    return_mesh = fields.Boolean(load_default=False)
    return_stills = fields.Boolean(load_default=False)
    fps = fields.Float(load_default=None, allow_none=True, validate=validate.Range(0.1, MAX_SAMPLE_FPS))
    micro_expressions = fields.Nested(
        MicroExpressionOptionsSchema, load_default=lambda: {"enabled": True, "sensitivity": 0.5}
    )

    @pre_load
    def _micro_expressions_as_a_switch(self, data, **_kwargs):
        """`micro_expressions=true` (a form field, a JSON bool, as the SDK sends it) means {"enabled": true}."""
        if isinstance(data, dict) and isinstance(data.get("micro_expressions"), bool):
            data = {**data, "micro_expressions": {"enabled": data["micro_expressions"]}}
        return data


class AnalyzeFormSchema(AnalyzeOptionsSchema):
    """Options plus how to deliver: synchronously, or as a job (optionally with a webhook)."""

    run_async = fields.Boolean(data_key="async", load_default=False)
    webhook_url = fields.Url(schemes={"http", "https"}, require_tld=False, load_default=None)


class AnalyzeJsonSchema(AnalyzeFormSchema):
    image_base64 = fields.String()
    video_base64 = fields.String()

    @validates_schema
    def _exactly_one_media(self, data, **_kwargs):
        if ("image_base64" in data) == ("video_base64" in data):
            raise ValidationError("send exactly one of image_base64 or video_base64", "_schema")


SCOPES = ("analyze", "admin")
MAX_USAGE_DAYS = 366


def strong_password(password: str) -> None:
    try:
        passwords.check_strength(password)
    except passwords.WeakPassword as exc:
        raise ValidationError(str(exc)) from exc


class SignUpSchema(StrictSchema):
    email = fields.Email(required=True)
    password = fields.String(required=True, validate=[validate.Length(max=passwords.MAX_LENGTH), strong_password])
    account_name = fields.String(required=True, validate=validate.Length(1, 200))


class PasswordChangeSchema(StrictSchema):
    email = fields.Email(required=True)
    current_password = fields.String(required=True, validate=validate.Length(1, passwords.MAX_LENGTH))
    new_password = fields.String(required=True, validate=[validate.Length(max=passwords.MAX_LENGTH), strong_password])


class NewPasswordSchema(StrictSchema):
    new_password = fields.String(required=True, validate=[validate.Length(max=passwords.MAX_LENGTH), strong_password])


class PasswordResetRequestSchema(StrictSchema):
    email = fields.Email(required=True)


class PasswordResetConfirmSchema(NewPasswordSchema):
    token = fields.String(required=True, validate=validate.Length(1, 200))


class SignInSchema(StrictSchema):
    email = fields.Email(required=True)
    password = fields.String(required=True, validate=validate.Length(1, 200))
    key_name = fields.String(load_default="sign-in", validate=validate.Length(0, 200))


class KeyCreateSchema(StrictSchema):
    name = fields.String(load_default="", validate=validate.Length(0, 200))
    scopes = fields.List(
        fields.String(validate=validate.OneOf(SCOPES)),
        load_default=lambda: ["analyze"],
        validate=validate.Length(1, len(SCOPES)),
    )


class UsageQuerySchema(StrictSchema):
    start = fields.Date(data_key="from")
    end = fields.Date(data_key="to")
    granularity = fields.String(load_default="day", validate=validate.OneOf(["day"]))

    @validates_schema
    def _ordered_and_bounded(self, data, **_kwargs):
        if "start" in data and "end" in data:
            if data["end"] < data["start"]:
                raise ValidationError("'to' is before 'from'", "to")
            if (data["end"] - data["start"]).days >= MAX_USAGE_DAYS:
                raise ValidationError(f"at most {MAX_USAGE_DAYS} days per query", "to")


class PortalSchema(StrictSchema):
    return_url = fields.Url(required=True, schemes={"http", "https"})


class SubscribeSchema(StrictSchema):
    payment_method = fields.String(validate=validate.Regexp(r"^pm_[A-Za-z0-9_]+$"))


# Studies: stimuli up to 10 minutes; each viewer's recording is still bound by the clip limits.
MAX_STIMULUS_MS = 600_000


class StudyCreateSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    stimulus_duration_ms = fields.Float(required=True, validate=validate.Range(1000, MAX_STIMULUS_MS))
    max_sessions = fields.Integer(load_default=None, validate=validate.Range(min=1))
    variables = fields.List(
        fields.String(
            validate=validate.Regexp(
                studies.VARIABLE_KEY.pattern + r"\Z", error="a lower-case letter, then up to 31 letters, digits or _"
            )
        ),
        load_default=list,
        validate=validate.Length(max=studies.MAX_VARIABLE_KEYS),
    )

    @validates_schema
    def _distinct_variables(self, data, **_kwargs):
        if len(set(data["variables"])) != len(data["variables"]):
            raise ValidationError("each variable once", "variables")


class ReportLinkCreateSchema(StrictSchema):
    expires_in_days = fields.Integer(
        load_default=studies.REPORT_LINK_DAYS, validate=validate.Range(1, studies.MAX_REPORT_LINK_DAYS)
    )


class ConsentSchema(StrictSchema):
    version = fields.String(required=True, validate=validate.Length(1, 50))
    accepted_at = fields.AwareDateTime(required=True, default_timezone=UTC)


class StudySessionFormSchema(StrictSchema):
    stimulus_started_ms = fields.Float(required=True, validate=validate.Range(0, MAX_STIMULUS_MS))
    consent = fields.Nested(ConsentSchema, required=True)
    segment = fields.String(load_default=None, validate=validate.Length(1, 100))
    # Checked against the study's own variables by studies.check_variables.
    variables = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)


# A comparison page shows a few cuts of one ad, not a portfolio: each study is a report's work.
MAX_COMPARED_STUDIES = 5


class CompareQuerySchema(StrictSchema):
    ids = fields.String(required=True, validate=validate.Length(1, MAX_COMPARED_STUDIES * 65))
    include_low_quality = fields.Boolean(load_default=False)

    @post_load
    def _split_ids(self, data, **_kwargs):
        ids = [i.strip() for i in data["ids"].split(",")]
        if len(ids) < 2 or len(ids) > MAX_COMPARED_STUDIES:
            raise ValidationError(f"between 2 and {MAX_COMPARED_STUDIES} study ids, separated by commas", "ids")
        if "" in ids or len(set(ids)) != len(ids):
            raise ValidationError("each study once, none empty", "ids")
        return {**data, "ids": ids}


class ReportQuerySchema(StrictSchema):
    bucket_ms = fields.Integer(load_default=1000, validate=[validate.Range(GRID_MS, 60_000)])
    include_low_quality = fields.Boolean(load_default=False)
    table = fields.String(load_default="seconds", validate=validate.OneOf(list(CSV_TABLES)))

    @validates_schema
    def _whole_grid_steps(self, data, **_kwargs):
        if data["bucket_ms"] % GRID_MS:
            raise ValidationError(f"a multiple of {GRID_MS} ms (the stored timeline's resolution)", "bucket_ms")
