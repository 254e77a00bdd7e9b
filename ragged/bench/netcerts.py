"""Throwaway TLS certificates for the TLS echo benchmark and the tests, made with the ``openssl`` command.

:func:`make_certs` writes a CA and a leaf certificate for ``localhost`` /
127.0.0.1 / ::1 signed by it (EC P-256 keys: cheap handshakes), valid for two
days, into a directory, and returns their paths.  ``openssl`` must be on the
path (:func:`have_openssl`).
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

_EXT = (
    "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n"
    "basicConstraints=CA:FALSE\n"
    "extendedKeyUsage=serverAuth,clientAuth\n"
)


@dataclass(frozen=True)
class Certs:
    """Paths of a test CA and of a leaf certificate (``localhost``) with its key."""

    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        """A server context presenting the leaf certificate."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts the test CA (hostname checks on)."""
        return ssl.create_default_context(cafile=str(self.ca))


def have_openssl() -> bool:
    """True if the ``openssl`` command is installed."""
    return shutil.which("openssl") is not None


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certs(directory: str | Path, name: str = "leaf") -> Certs:
    """Make a CA and a ``localhost`` leaf signed by it in ``directory``; the CA is reused if there."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    if not (d / "ca.pem").exists():
        _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                 "-subj", "/CN=ragged test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)  # fmt: skip
    (d / f"{name}.ext").write_text(_EXT)
    _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", "/CN=localhost", cwd=d)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)  # fmt: skip
    return Certs(d / "ca.pem", d / f"{name}.pem", d / f"{name}.key")
