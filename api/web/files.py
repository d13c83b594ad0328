"""Files in and out of the web layer, for the API and the console alike: uploaded videos, the
stored stimulus with byte ranges, reports as CSV."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from flask import Response, request
from werkzeug.datastructures import FileStorage

from api.domain import audience
from api.domain.report_pdf import report_pdf
from api.engine.media import VIDEO_FORMATS, VIDEO_MIMETYPES, sniff_format
from api.web.context import services
from api.web.errors import ApiError

CSV = "text/csv"
PDF = "application/pdf"
# Uploaded bytes on our origin: a <video> element plays them, but a browser opening the address
# downloads them (attachment), never sniffs them (nosniff), and would run them without our origin
# (sandbox) even if it rendered them as a page.
INERT_MEDIA_HEADERS = {
    "Cache-Control": "private, max-age=3600",
    "X-Content-Type-Options": "nosniff",
    "Content-Disposition": "attachment",
    "Content-Security-Policy": "sandbox; default-src 'none'",
}


def _bytes(count: int) -> str:
    return f"{count} bytes ({count / 2**20:.3g} MiB)"


def upload_too_large(field: str, size: int | None, limit: int) -> ApiError:
    """413 naming the field, its real size (None: not known, as reading stopped past the limit) and the limit."""
    actual = _bytes(size) if size is not None else f"more than {_bytes(limit)}"
    return ApiError(
        413,
        "media_too_large",
        "Upload too large",
        f"'{field}' is {actual}; an upload is limited to {_bytes(limit)}",
        errors={field: [f"{size if size is not None else f'More than {limit}'} bytes; at most {limit}."]},
    )


def empty_upload(field: str) -> ApiError:
    return ApiError(
        400,
        "media_empty",
        "Empty upload",
        f"'{field}' is empty (0 bytes); send a photo or a clip",
        errors={field: ["Empty (0 bytes)."]},
    )


def upload_bytes(field: str, upload: FileStorage, max_bytes: int) -> bytes:
    """A file part's bytes, refused before they are read when over the limit or empty: Werkzeug has
    already stored the part whole (in memory or a temporary file), so its real size is known."""
    size = upload.stream.seek(0, os.SEEK_END)
    upload.stream.seek(0)
    if size > max_bytes:
        raise upload_too_large(field, size, max_bytes)
    if size == 0:
        raise empty_upload(field)
    return upload.read()


def video_upload(name: str, required: bool) -> bytes | None:
    """The multipart part `name`: a video within the upload limit."""
    upload = request.files.get(name)
    if upload is None or upload.filename == "":  # a form's file field left empty sends a nameless, empty part
        if required:
            raise ApiError(
                400,
                "invalid_request",
                "Invalid request",
                f"the multipart body needs a '{name}' part",
                errors={name: ["Missing data for required field."]},
            )
        return None
    data = upload_bytes(name, upload, services().settings.limits.max_upload_bytes)
    if sniff_format(data) not in VIDEO_FORMATS:
        raise ApiError(
            415, "unsupported_media_type", "Unsupported media type", f"'{name}' must be an MP4, MOV or WebM video"
        )
    return data


def stimulus_response(data: bytes, content_type: str | None) -> Response:
    """The stored stimulus video, with byte ranges: without them a browser cannot seek its player,
    e.g. to a moment of the report. Only a video type is served: rows stored before types were
    sniffed may hold whatever the client declared."""
    mimetype = content_type if content_type in VIDEO_MIMETYPES.values() else "application/octet-stream"
    response = Response(data, mimetype=mimetype, headers=INERT_MEDIA_HEADERS)
    return response.make_conditional(request, accept_ranges=True, complete_length=len(data))


def report_csv_response(study_id: str, report: dict, table: str = "seconds") -> Response:
    """One of the report's tables (audience.CSV_TABLES) as a CSV download."""
    name = "report" if table == "seconds" else table
    return Response(
        audience.CSV_TABLES[table](report),
        mimetype=CSV,
        headers={"Content-Disposition": f'attachment; filename="{study_id}-{name}.csv"'},
    )


def report_pdf_response(study_id: str, name: str, report: dict) -> Response:
    """The report as a one-page PDF download, dated today (UTC)."""
    return Response(
        report_pdf(name, report, datetime.now(UTC).date()),
        mimetype=PDF,
        headers={"Content-Disposition": f'attachment; filename="{study_id}-report.pdf"'},
    )
