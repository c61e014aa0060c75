"""E-mail over SMTP and SMS through an HTTP gateway, as channels of the delivery worker.

Each queued message carries an idempotency key: the e-mail's Message-ID and the SMS
gateway's ``$key`` are made from it, so a copy sent again after a lost answer can be
recognised by the receiver.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import string
import urllib.parse
import urllib.request
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from ingest.alerts import storage
from ingest.alerts.notify_settings import DeliverySettings, SmsGatewaySettings, SmtpSettings
from ingest.alerts.webhook import USER_AGENT, http_outcome


def _message(n: storage.Notification) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(n.payload)
    return body


def message_id(key: str, sender: str) -> str:
    domain = sender.rpartition("@")[2] or "medicobus"
    safe = "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in key)
    return f"<{safe}@{domain}>"


class EmailChannel:
    name = "email"

    def __init__(self, smtp: SmtpSettings, delivery: DeliverySettings) -> None:
        self.smtp = smtp
        self.timeout_s = smtp.timeout_s
        self.max_attempts = delivery.max_attempts
        self.backoff_s = delivery.backoff_s
        self.max_backoff_s = delivery.max_backoff_s

    def compose(self, n: storage.Notification) -> EmailMessage:
        body = _message(n)
        mail = EmailMessage()
        mail["From"] = self.smtp.sender
        mail["To"] = body["to"]
        mail["Subject"] = body["subject"]
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = (
            message_id(n.idempotency_key, self.smtp.sender)
            if n.dedup_key
            else make_msgid(domain="medicobus")
        )
        mail["Content-Language"] = "fr"
        mail.set_content(body["text"], charset="utf-8")
        for attachment in body.get("attachments", []):
            mail.add_attachment(
                bytes.fromhex(attachment["hex"]),
                maintype="application",
                subtype="pdf",
                filename=attachment["filename"],
            )
        return mail

    def send(self, n: storage.Notification) -> str | None:
        mail = self.compose(n)
        s = self.smtp
        try:
            context = ssl.create_default_context(
                cafile=None if s.ca_file is None else str(s.ca_file)
            )
            client: smtplib.SMTP
            if s.security == "tls":
                client = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_s, context=context)
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
            with client:
                if s.security == "starttls":
                    client.starttls(context=context)
                if s.username is not None and s.password is not None:
                    client.login(s.username, s.password.get_secret_value())
                refused = client.send_message(mail)
        except smtplib.SMTPResponseException as exc:
            raw = exc.smtp_error
            text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
            return f"SMTP {exc.smtp_code} {text}"
        except (smtplib.SMTPException, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"
        if refused:
            return f"SMTP refused {', '.join(refused)}"
        return None


class SmsChannel:
    name = "sms"

    def __init__(self, gateway: SmsGatewaySettings, delivery: DeliverySettings) -> None:
        self.gateway = gateway
        self.timeout_s = gateway.timeout_s
        self.max_attempts = delivery.max_attempts
        self.backoff_s = delivery.backoff_s
        self.max_backoff_s = delivery.max_backoff_s

    def request(self, n: storage.Notification) -> urllib.request.Request:
        body = _message(n)
        text = str(body["text"])
        values = {
            "to": str(body["to"]),
            "text": text,
            "key": n.idempotency_key,
            "to_json": json.dumps(str(body["to"]), ensure_ascii=False),
            "text_json": json.dumps(text, ensure_ascii=False),
            "to_url": urllib.parse.quote(str(body["to"]), safe=""),
            "text_url": urllib.parse.quote(text, safe=""),
        }
        headers = {"User-Agent": USER_AGENT}
        headers.update(
            {k: string.Template(v).substitute(values) for k, v in self.gateway.headers.items()}
        )
        data = string.Template(self.gateway.body).substitute(values).encode()
        url = string.Template(self.gateway.url).substitute(
            {k: v for k, v in values.items() if k.endswith("_url")} | {"key": values["key"]}
        )
        return urllib.request.Request(url, data=data, method=self.gateway.method, headers=headers)

    def send(self, n: storage.Notification) -> str | None:
        return http_outcome(self.request(n), self.timeout_s)
