"""Certificates and keys for the test control plane, made with the openssl CLI."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# The apiserver's serving certificate must name every address a client may dial: loopback for
# the tests, and the in-cluster names and service IP a pod-side client would use.
SERVING_DNS = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
DAYS = "3650"


class PkiError(RuntimeError):
    """openssl is missing or one of its commands failed."""


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
    def serving_crt(self) -> Path:
        return self.dir / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.dir / "apiserver.key"

    @property
    def admin_crt(self) -> Path:
        return self.dir / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.dir / "admin.key"

    @property
    def kcm_crt(self) -> Path:
        return self.dir / "controller-manager.crt"

    @property
    def kcm_key(self) -> Path:
        return self.dir / "controller-manager.key"

    @property
    def kubelet_client_crt(self) -> Path:
        return self.dir / "apiserver-kubelet-client.crt"

    @property
    def kubelet_client_key(self) -> Path:
        return self.dir / "apiserver-kubelet-client.key"

    @property
    def front_proxy_ca_crt(self) -> Path:
        return self.dir / "front-proxy-ca.crt"

    @property
    def front_proxy_ca_key(self) -> Path:
        return self.dir / "front-proxy-ca.key"

    @property
    def front_proxy_crt(self) -> Path:
        return self.dir / "front-proxy-client.crt"

    @property
    def front_proxy_key(self) -> Path:
        return self.dir / "front-proxy-client.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"


def _openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise PkiError("the 'openssl' command is missing (apt-get install openssl)")
    proc = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise PkiError(f"openssl {' '.join(args)} failed: {proc.stderr.strip()}")


def _ec_key(path: Path) -> None:
    # P-256 keys: generated in milliseconds, accepted by every Kubernetes component.
    _openssl(
        "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(path), cwd=path.parent
    )
    path.chmod(0o600)


def _make_ca(key: Path, crt: Path, name: str) -> None:
    _ec_key(key)
    _openssl(
        "req", "-x509", "-new", "-key", str(key), "-subj", f"/CN={name}",
        "-days", DAYS, "-sha256", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        "-out", str(crt),
        cwd=crt.parent,
    )  # fmt: skip


def _sign(
    pki: Pki,
    key: Path,
    crt: Path,
    subject: str,
    extensions: str,
    ca: tuple[Path, Path] | None = None,
) -> None:
    ca_crt, ca_key = ca or (pki.ca_crt, pki.ca_key)
    csr = crt.with_suffix(".csr")
    ext = crt.with_suffix(".ext")
    ext.write_text(extensions)
    _ec_key(key)
    _openssl("req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr), cwd=pki.dir)
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", DAYS, "-sha256", "-extfile", str(ext), "-out", str(crt),
        cwd=pki.dir,
    )  # fmt: skip
    csr.unlink()
    ext.unlink()


CLIENT_EXTENSIONS = (
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
)


def sign_client(pki: Pki, key: Path, crt: Path, subject: str) -> None:
    """A client certificate signed by the test ground's CA (`/O=group/CN=user`)."""
    _sign(pki, key, crt, subject, CLIENT_EXTENSIONS)


def make_pki(directory: Path, service_ip: str) -> Pki:
    """Creates a fresh CA, serving and client certificates and the service-account key pair."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory)
    _make_ca(pki.ca_key, pki.ca_crt, "cijob-testground-ca")
    # The aggregation layer's own CA, as kubeadm makes it: the apiserver publishes it in
    # extension-apiserver-authentication, which the controller manager's authn waits for.
    _make_ca(pki.front_proxy_ca_key, pki.front_proxy_ca_crt, "cijob-testground-front-proxy-ca")
    client = CLIENT_EXTENSIONS
    sans = ",".join([*(f"DNS:{d}" for d in SERVING_DNS), "IP:127.0.0.1", f"IP:{service_ip}"])
    _sign(
        pki, pki.serving_key, pki.serving_crt, "/CN=kube-apiserver",
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        f"extendedKeyUsage=serverAuth\nsubjectAltName={sans}\n",
    )  # fmt: skip
    # O=system:masters is the group RBAC's bootstrap policy makes cluster-admin.
    _sign(pki, pki.admin_key, pki.admin_crt, "/O=system:masters/CN=cijob-testground-admin", client)
    # The bootstrap policy grants this user exactly what the controller manager needs.
    _sign(pki, pki.kcm_key, pki.kcm_crt, "/CN=system:kube-controller-manager", client)
    _sign(
        pki, pki.kubelet_client_key, pki.kubelet_client_crt,
        "/O=kubeadm:cluster-admins/CN=kube-apiserver-kubelet-client", client,
    )  # fmt: skip
    _sign(
        pki, pki.front_proxy_key, pki.front_proxy_crt, "/CN=front-proxy-client", client,
        ca=(pki.front_proxy_ca_crt, pki.front_proxy_ca_key),
    )  # fmt: skip
    _ec_key(pki.sa_key)
    _openssl("ec", "-in", str(pki.sa_key), "-pubout", "-out", str(pki.sa_pub), cwd=directory)
    return pki
