"""MLLP over TLS: a sender that trusts the listener's certificate gets its ACK; a plain-text
sender gets nothing; with ``tls_client_ca`` a sender without a certificate is turned away.
Certificates are made for the test with the ``openssl`` command."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.errors import ConfigError
from bridge.hl7.frame import FrameReader, wrap
from tests.conftest import unavailable
from tests.hl7_samples import siu
from tests.integration.hl7.conftest import Sender, codes

START = datetime(2026, 3, 30, 9, 30)


def certificate(folder: Path, name: str) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        unavailable("the openssl command is needed to make test certificates")
    assert openssl is not None
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def tls_send(port: int, context: ssl.SSLContext, raw: bytes) -> list[str]:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as plain,
        context.wrap_socket(plain, server_hostname="127.0.0.1") as secure,
    ):
        secure.sendall(wrap(raw))
        frames = FrameReader(1 << 20)
        found: list[bytes] = []
        while not found:
            data = secure.recv(65536)
            if not data:
                raise ConnectionError("closed")
            found += [f.payload for f in frames.feed(data)]
    return [f.decode() for f in found]


def test_tls_listener(listener: Any, tmp_path: Path) -> None:
    cert, key = certificate(tmp_path, "server")
    running = listener(tls_cert=cert, tls_key=key)
    trusting = ssl.create_default_context(cafile=str(cert))
    assert codes(tls_send(running.port, trusting, siu("T1", "K1", "P1", START))) == ["AA"]
    plain = Sender(running.port)
    plain.socket.sendall(wrap(siu("T2", "K2", "P1", START)))
    assert plain.closed_by_peer(within=10)
    plain.close()
    with pytest.raises(ssl.SSLError):
        tls_send(running.port, ssl.create_default_context(), siu("T3", "K3", "P1", START))


def test_client_certificates_when_asked(listener: Any, tmp_path: Path) -> None:
    cert, key = certificate(tmp_path, "server")
    client_cert, client_key = certificate(tmp_path, "client")
    running = listener(tls_cert=cert, tls_key=key, tls_client_ca=client_cert)
    with_cert = ssl.create_default_context(cafile=str(cert))
    with_cert.load_cert_chain(client_cert, client_key)
    assert codes(tls_send(running.port, with_cert, siu("T1", "K1", "P1", START))) == ["AA"]
    without = ssl.create_default_context(cafile=str(cert))
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        tls_send(running.port, without, siu("T2", "K2", "P1", START))


def test_unreadable_certificates_are_a_config_error(listener: Any, tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"hl7\.tls_cert"):
        listener(tls_cert=tmp_path / "bad.pem", tls_key=tmp_path / "bad.pem")
