"""A real SMTP server for tests (aiosmtpd): STARTTLS or implicit TLS with a certificate
made by openssl for 127.0.0.1, login required, every accepted mail kept; it can be
stopped and started again on the same port."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USER = "medicobus"
PASSWORD = "s3cret-mot-de-passe"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """(certificate, key) for 127.0.0.1 and localhost."""
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        body = self.message.get_body(preferencelist=("plain",))
        assert body is not None
        content: str = body.get_content()
        return content


class _Keeper:
    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd hook)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._server.lock:
            self._server.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), message)
            )
        return "250 OK"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = (
        isinstance(data, LoginPassword)
        and data.login == USER.encode()
        and data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok)


class SmtpServer:
    def __init__(self, directory: Path, *, implicit_tls: bool = False) -> None:
        self.cert, self.key = self_signed(directory)
        self.port = free_port()
        self.implicit_tls = implicit_tls
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.cert), str(self.key))
        return ctx

    def start(self) -> SmtpServer:
        tls = self._context()
        kwargs: dict[str, Any] = {
            "auth_required": True,
            "authenticator": _authenticate,
        }
        if self.implicit_tls:
            # aiosmtpd counts only STARTTLS as TLS for AUTH; here the whole connection is.
            kwargs.update(ssl_context=tls, auth_require_tls=False)
        else:
            kwargs.update(tls_context=tls, require_starttls=True)
        self._controller = Controller(_Keeper(self), hostname="127.0.0.1", port=self.port, **kwargs)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def mails(self) -> list[Received]:
        with self.lock:
            return list(self.received)
