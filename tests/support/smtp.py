"""A real SMTP server on the loopback interface, for code that sends mail with ``smtplib``.

:class:`SMTPServer` runs aiosmtpd on 127.0.0.1 and a free port, from a thread of the test
process. It demands what a provider's submission port does: STARTTLS first (with a
self-signed certificate for ``localhost``, made at start), then AUTH LOGIN or PLAIN with
its one user and password, and only then a message. Each message it accepts is kept, with
its envelope and whether the session was encrypted and authenticated.
"""

from __future__ import annotations

import asyncio
import datetime
import email
import email.policy
import ipaddress
import socket
import ssl
import tempfile
from collections.abc import Awaitable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Received:
    """A message the server accepted, and how the session that sent it began."""

    mail_from: str | None
    rcpt_tos: list[str]
    message: EmailMessage
    #: STARTTLS had encrypted the session.
    tls: bool
    #: The user the session authenticated as (``None``: it did not).
    user: str | None


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for ``localhost`` (and 127.0.0.1) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "localhost.pem"
    key_path = directory / "localhost-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _Handler:
    """aiosmtpd's handler and authenticator: checks the one login, keeps each message."""

    def __init__(self, user: str, password: str) -> None:
        self._login = LoginPassword(user.encode(), password.encode())
        self.received: list[Received] = []
        #: The user names of the logins refused, in order.
        self.refused: list[str] = []

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if mechanism in ("LOGIN", "PLAIN") and isinstance(auth_data, LoginPassword):
            if auth_data == self._login:
                return AuthResult(success=True, auth_data=auth_data.login.decode())
            self.refused.append(auth_data.login.decode(errors="replace"))
        return AuthResult(success=False, handled=False)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)  # what policy.default parses into
        self.received.append(
            Received(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                message=message,
                tls=session.ssl is not None,
                user=session.auth_data if session.authenticated else None,
            )
        )
        return "250 Message accepted for delivery"


class _BoundController(Controller):
    """aiosmtpd's threaded controller, serving a socket bound beforehand: the port is
    known before the server starts, and nothing else can take it in between."""

    def __init__(self, handler: _Handler, sock: socket.socket, **smtp: Any) -> None:
        super().__init__(handler, hostname=HOST, port=sock.getsockname()[1], **smtp)
        self._sock = sock

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        # As InetMixin's, with the socket instead of host and port.
        return self.loop.create_server(self._factory_invoker, sock=self._sock)


class SMTPServer:
    """An SMTP server at ``host``:``port`` accepting mail from ``user`` with ``password``
    after STARTTLS. ``cert_path`` is its certificate, for a client that verifies it.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, user: str = "mailer", password: str = "smtp-secret") -> None:
        self.host = HOST
        self.user = user
        self.password = password
        self._handler = _Handler(user, password)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((HOST, 0))
        self.port: int = self._socket.getsockname()[1]
        self._directory = tempfile.TemporaryDirectory(prefix="smtp-")
        self.cert_path, key_path = _self_signed(Path(self._directory.name))
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(self.cert_path, key_path)
        self._controller = _BoundController(
            self._handler,
            self._socket,
            server_hostname="localhost",
            tls_context=tls,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=self._handler.authenticate,
        )
        self._running = False

    @property
    def received(self) -> list[Received]:
        """The messages accepted so far, in order."""
        return self._handler.received

    @property
    def refused(self) -> list[str]:
        """The user names of the logins refused so far (a wrong password, an unknown user)."""
        return self._handler.refused

    def start(self) -> None:
        self._controller.start()
        self._running = True

    def stop(self) -> None:
        if self._running:
            self._controller.stop()
            self._running = False
        self._socket.close()
        self._directory.cleanup()

    def __enter__(self) -> SMTPServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
