"""The CDS Hooks request envelope and feedback (CDS Hooks 2.0.1), validated with marshmallow.

A malformed call gets 400 with an OperationOutcome whose issues name the field (``context.patientId``,
``feedback[0].acceptedSuggestions``). Fields the spec does not define are ignored, as the spec
expects of services (clients add their own); empty strings, nulls and empty lists are refused
where the spec gives no meaning to them.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from service.fhir_io.outcome import FhirError, Issue

# Caps on what feedback may store (issue 23): every field and the items per request are bounded, so
# one request cannot fill the records store's disk; a longer value is a 400 naming the field.
MAX_FEEDBACK_ITEMS = 20  # a hook answer carries one card; a client reports a few at a time
MAX_SUGGESTIONS = 20  # a card offers a handful of suggestions (service/cds/cards.py)
MAX_SUGGESTION_ID = 64  # suggestion uuids are 36 characters
MAX_COMMENT = 1000  # overrideReason.userComment: a clinician's sentence or two
MAX_DISPLAY = 255
# \Z, not $: with match(), $ also matches before a final newline ("x\n" would pass as an id)
FHIR_ID = validate.Regexp(r"^[A-Za-z0-9\-.]{1,64}\Z", error="must be a FHIR id: 1 to 64 letters, digits, - or .")
NON_EMPTY = validate.Length(min=1)


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class FhirAuthorizationSchema(_Lenient):
    access_token = fields.String(required=True, validate=NON_EMPTY)
    token_type = fields.String(required=True, validate=validate.OneOf(["Bearer", "bearer"]))
    expires_in = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    scope = fields.String(required=True, validate=NON_EMPTY)
    subject = fields.String(required=True, validate=NON_EMPTY)
    patient = fields.String(validate=FHIR_ID)


class ContextSchema(_Lenient):
    userId = fields.String(validate=NON_EMPTY)
    patientId = fields.String(validate=FHIR_ID)
    encounterId = fields.String(validate=FHIR_ID)


class HookRequestSchema(_Lenient):
    hook = fields.String(required=True, validate=NON_EMPTY)
    hookInstance = fields.UUID(required=True)
    fhirServer = fields.Url(require_tld=False, schemes={"http", "https"})
    fhirAuthorization = fields.Nested(FhirAuthorizationSchema)
    context = fields.Nested(ContextSchema, required=True)
    # key -> resource or null: what a resource holds is checked where it is read (answers.py)
    prefetch = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True))
    extension = fields.Dict()

    def __init__(self, hook: str, context_fields: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.expected_hook, self.context_fields = hook, context_fields

    @validates_schema(skip_on_field_errors=False)
    def envelope(self, data: dict, **kwargs: Any) -> None:
        errors: dict[str, Any] = {}
        if "hook" in data and data["hook"] != self.expected_hook:
            errors["hook"] = [f"this service answers the {self.expected_hook} hook"]
        if "fhirAuthorization" in data and "fhirServer" not in data:
            errors["fhirServer"] = ["required with fhirAuthorization (cds-r-1)"]
        context = data.get("context")
        if isinstance(context, dict):
            missing = {f: ["required by the hook"] for f in self.context_fields if f not in context}
            if missing:
                errors["context"] = missing
        if errors:
            raise ValidationError(errors)


class CodingSchema(_Lenient):
    system = fields.String(required=True, validate=NON_EMPTY)
    code = fields.String(required=True, validate=NON_EMPTY)
    display = fields.String(validate=validate.Length(1, MAX_DISPLAY))


class ReasonCodingSchema(CodingSchema):
    # the records store's columns (service/records/schema.py, cds_feedback)
    system = fields.String(required=True, validate=validate.Length(1, 255))
    code = fields.String(required=True, validate=validate.Length(1, 64))


class OverrideReasonSchema(_Lenient):
    reason = fields.Nested(ReasonCodingSchema)
    userComment = fields.String(validate=validate.Length(1, MAX_COMMENT))

    @validates_schema
    def reason_or_comment(self, data: dict, **kwargs: Any) -> None:
        if not data:
            raise ValidationError("give reason, userComment or both (cds-fb-3)")


class AcceptedSuggestionSchema(_Lenient):
    id = fields.String(required=True, validate=validate.Length(1, MAX_SUGGESTION_ID))


def _rfc3339(value: str) -> None:
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValidationError("must be an RFC 3339 date-time, e.g. 2026-11-20T09:10:00Z") from None
    if parsed.tzinfo is None or "T" not in value.upper():
        raise ValidationError("must be an RFC 3339 date-time with its UTC offset")


class FeedbackItemSchema(_Lenient):
    card = fields.String(required=True, validate=validate.Length(1, 64))  # cds_feedback.card_uuid
    outcome = fields.String(required=True, validate=validate.OneOf(["accepted", "overridden"]))
    acceptedSuggestions = fields.List(fields.Nested(AcceptedSuggestionSchema),
                                      validate=validate.Length(1, MAX_SUGGESTIONS))
    overrideReason = fields.Nested(OverrideReasonSchema)
    outcomeTimestamp = fields.String(required=True, validate=[validate.Length(max=40), _rfc3339])

    @validates_schema
    def outcome_fits(self, data: dict, **kwargs: Any) -> None:
        if data.get("outcome") == "accepted":
            if "acceptedSuggestions" not in data:
                raise ValidationError("required when outcome is accepted (cds-fb-2)", "acceptedSuggestions")
            if "overrideReason" in data:
                raise ValidationError("only with outcome overridden", "overrideReason")
        if data.get("outcome") == "overridden" and "acceptedSuggestions" in data:
            raise ValidationError("only with outcome accepted", "acceptedSuggestions")


class FeedbackSchema(_Lenient):
    feedback = fields.List(fields.Nested(FeedbackItemSchema), required=True,
                           validate=validate.Length(min=1, max=MAX_FEEDBACK_ITEMS))


def load(schema: Schema, body: Any) -> dict:
    """`body` loaded by `schema`; FhirError 400 naming each field that is wrong."""
    if not isinstance(body, dict):
        raise FhirError.one(400, "structure", "The body must be a JSON object.")
    try:
        return schema.load(body)
    except ValidationError as err:
        issues = [Issue("invalid" if "required" not in text.lower() else "required",
                        f"{where}: {text}", where)
                  for where, text in _flatten(err.messages)]
        raise FhirError(400, issues[:20]) from None


def _flatten(messages: Any, where: str = "") -> list[tuple[str, str]]:
    if isinstance(messages, dict):
        out = []
        for key, value in messages.items():
            if key == "_schema":
                out += _flatten(value, where)
            elif isinstance(key, int):
                out += _flatten(value, f"{where}[{key}]")
            else:
                out += _flatten(value, f"{where}.{key}" if where else str(key))
        return out
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [(where or "$", " ".join(messages))]
    if isinstance(messages, list):
        return [pair for m in messages for pair in _flatten(m, where)]
    return [(where or "$", str(messages))]
