"""Deliver a rendered report: into a directory (written atomically) or by SMTP (smtplib).

Both raise DeliveryError with the reason; the scheduler logs and counts it.
"""

from __future__ import annotations

import datetime as dt
import os
import smtplib
import ssl
import tempfile
from email.message import EmailMessage
from pathlib import Path

from exporter.config.notify_model import Report as ReportConfig
from exporter.config.notify_model import ReportFormat, SmtpDelivery
from exporter.report.render import EXTENSIONS, MIME_SUBTYPES

SMTP_TIMEOUT = 30.0


class DeliveryError(Exception):
    pass


def file_name(config: ReportConfig, end: float) -> str:
    stamp = dt.datetime.fromtimestamp(end, dt.UTC).strftime("%Y-%m-%dT%H%MZ")
    return f"{config.name}-{config.period.value}-{stamp}.{EXTENSIONS[config.format]}"


def to_directory(directory: str, name: str, text: str) -> Path:
    target = Path(directory)
    try:
        target.mkdir(parents=True, exist_ok=True)
        # Written beside, then renamed: a reader never sees half a report.
        fd, tmp = tempfile.mkstemp(dir=target, prefix=".", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        final = target / name
        os.replace(tmp, final)
    except OSError as exc:
        raise DeliveryError(f"cannot write {target / name}: {exc.strerror or exc}") from None
    return final


def by_smtp(smtp: SmtpDelivery, subject: str, text: str, fmt: ReportFormat, name: str, summary: str) -> None:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = smtp.sender
    msg["To"] = ", ".join(smtp.to)
    if fmt is ReportFormat.HTML:
        msg.set_content(summary)
        msg.add_alternative(text, subtype="html")
    else:
        msg.set_content(text)
        msg.add_attachment(text.encode(), maintype="text", subtype=MIME_SUBTYPES[fmt], filename=name)
    password = None
    if smtp.auth_password_env:
        password = os.environ.get(smtp.auth_password_env)
        if not password:
            raise DeliveryError(f"environment variable {smtp.auth_password_env} (SMTP password) is not set")
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=SMTP_TIMEOUT) as client:
            client.ehlo()
            if smtp.starttls and client.has_extn("starttls"):
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if smtp.auth_username and password:
                client.login(smtp.auth_username, password)
            client.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"SMTP {smtp.smarthost}: {exc}") from None
