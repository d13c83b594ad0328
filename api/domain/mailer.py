"""Outgoing email (password-reset links): SMTP when EMOSCOPE_SMTP_URL is set, else the log.

The logging mailer is the embedded default for development: it writes the whole message, reset
link included, to the log, and that link is a secret (whoever holds it sets the password). A
deployment that serves real owners sets EMOSCOPE_SMTP_URL.
"""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)
TIMEOUT_S = 10


class Mailer(Protocol):
    def send(self, to: str, subject: str, body: str) -> None: ...


class LoggingMailer:
    def send(self, to: str, subject: str, body: str) -> None:
        log.warning(
            "no SMTP configured (EMOSCOPE_SMTP_URL): email to %s logged instead, secrets included: %s\n%s",
            to,
            subject,
            body,
        )


class SmtpMailer:
    """`smtp://user:password@host:587` (STARTTLS) or `smtps://…:465` (TLS from the start)."""

    def __init__(self, url: str, sender: str) -> None:
        self.parts, self.sender = urlsplit(url), sender

    def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, subject
        message.set_content(body)
        parts = self.parts
        if parts.scheme == "smtps":
            connection = smtplib.SMTP_SSL(parts.hostname, parts.port or 465, timeout=TIMEOUT_S)
        else:
            connection = smtplib.SMTP(parts.hostname, parts.port or 587, timeout=TIMEOUT_S)
        with connection:
            if parts.scheme == "smtp":
                connection.starttls()
            if parts.username:
                connection.login(unquote(parts.username), unquote(parts.password or ""))
            connection.send_message(message)


def make_mailer(smtp_url: str | None, sender: str) -> Mailer:
    return SmtpMailer(smtp_url, sender) if smtp_url else LoggingMailer()
