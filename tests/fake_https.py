"""What the GCP and Azure control-plane fakes share: a loopback certificate and a JSON HTTPS server.

The real SDK clients insist on TLS (azure-core sends a bearer token over https only; gRPC's call
credentials need a secure channel), so the fakes serve https with a throwaway certificate for
127.0.0.1 and localhost, and the clients trust it through the standard settings:
REQUESTS_CA_BUNDLE (requests, under google-auth, google-api-core REST and azure-core) and
GRPC_DEFAULT_SSL_ROOTS_FILE_PATH (gRPC).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.loopback import LoopbackServer, QuietHandler


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (certificate PEM, private key PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fake-cert.pem", directory / "fake-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Request:
    def __init__(self, method: str, target: str, headers: Any, body: bytes):
        parts = urlsplit(target)
        self.method = method
        self.path = parts.path
        self.query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.headers = headers
        self.raw = body
        content_type = headers.get("Content-Type", "")
        if body and "json" in content_type:
            self.body = json.loads(body)
        elif body and "x-www-form-urlencoded" in content_type:
            self.body = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
        else:
            self.body = None

    @property
    def bearer(self) -> str | None:
        value = self.headers.get("Authorization", "")
        return value[len("Bearer "):] if value.startswith("Bearer ") else None


# What a route answers: status, JSON body (None: empty), extra headers.
Response = tuple[int, Any, dict[str, str]]


def https_server(certificate: tuple[Path, Path], handle: Callable[[Request], Response]) -> LoopbackServer:
    """A threaded HTTPS server on a free loopback port handing every request to `handle`."""

    class Handler(QuietHandler):
        def _serve(self) -> None:
            status, body, headers = handle(Request(self.command, self.path, self.headers, self.read_body()))
            payload = b"" if body is None else json.dumps(body).encode()
            self.answer(status, {"Content-Type": "application/json", **headers}, payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return LoopbackServer(Handler, certificate)
