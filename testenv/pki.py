"""Certificates and keys for a loopback control plane, made with the `openssl` command line.

One CA signs the API server's serving certificate (SANs 127.0.0.1, localhost) and the
client certificates (admin in `system:masters`, the controller-manager); a separate RSA
key pair signs service-account tokens.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pki:
    """Paths of everything the control plane and its clients need."""

    dir: Path

    @property
    def ca_crt(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"

    def crt(self, name: str) -> Path:
        return self.dir / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _sign(pki: Pki, name: str, subject: str, ext: str) -> None:
    """Key + certificate for `name`, signed by the CA, with the given x509v3 extensions."""
    d = pki.dir
    _openssl("genrsa", "-out", pki.key(name).name, "2048", cwd=d)
    _openssl("req", "-new", "-key", pki.key(name).name, "-subj", subject, "-out", f"{name}.csr", cwd=d)
    (d / f"{name}.ext").write_text(ext)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "3650", "-sha256", "-extfile", f"{name}.ext", "-out", pki.crt(name).name, cwd=d)


def make_pki(directory: Path) -> Pki:
    """Create (once) the CA, serving, client and service-account keys under `directory`."""
    pki = Pki(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if pki.crt("admin").exists() and pki.sa_pub.exists():
        return pki
    _openssl("genrsa", "-out", "ca.key", "2048", cwd=directory)
    _openssl("req", "-x509", "-new", "-nodes", "-key", "ca.key", "-subj", "/CN=bigk-testenv-ca", "-days", "3650",
             "-out", "ca.crt", cwd=directory)
    _sign(pki, "apiserver", "/CN=kube-apiserver",
          "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
          "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc,IP:10.96.0.1\n")
    client = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"
    _sign(pki, "admin", "/O=system:masters/CN=bigk-testenv-admin", client)
    _sign(pki, "controller-manager", "/CN=system:kube-controller-manager", client)
    _sign(pki, "scheduler", "/CN=system:kube-scheduler", client)
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=directory)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=directory)
    return pki
