"""gunicorn's access log without capabilities: a participant link (/s/<token>), a client's report link
(/r/<token>) and a session's receipt (/v1/studies/<id>/sessions/<receipt>) open data to whoever holds
them, so they never reach a log line.

Kept apart from api.web.observability so that gunicorn's master process imports neither Flask nor
prometheus-client.
"""

from __future__ import annotations

import re

from gunicorn.glogging import Logger

REDACTED = "[redacted]"
# The segment after /s/, /r/ or /sessions/, wherever it appears (a path, a request line, a Referer).
CAPABILITY_SEGMENT = re.compile(r"(/s/|/r/|/sessions/)[^/?#\s]+")


def redact(text: str) -> str:
    return CAPABILITY_SEGMENT.sub(rf"\1{REDACTED}", text)


class RedactingLogger(Logger):
    """The stock logger, with the path (U), the request line (r) and the Referer (f) redacted."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for name in ("U", "r", "f"):
            if isinstance(atoms.get(name), str):
                atoms[name] = redact(atoms[name])
        return atoms
