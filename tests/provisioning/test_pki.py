"""Cluster CAs and kubeconfigs: chain, subject, lifetime, and what kubectl reads."""

import base64
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from provisioning import pki


def _cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def test_client_certificate_chains_to_the_client_ca() -> None:
    ca = pki.make_ca("demo-client-ca")
    credential = pki.issue_client(ca, "alice", "viewer", timedelta(hours=8))
    cert, ca_cert = _cert(credential.cert_pem), _cert(ca.cert_pem)
    cert.verify_directly_issued_by(ca_cert)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert (
        cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "portal:viewer"
    )
    lifetime = cert.not_valid_after_utc - datetime.now(UTC)
    assert timedelta(hours=7, minutes=59) < lifetime <= timedelta(hours=8)
    assert format(cert.serial_number, "x") == credential.serial


def test_certificate_from_another_ca_does_not_verify() -> None:
    credential = pki.issue_client(pki.make_ca("one"), "alice", "admin", timedelta(hours=1))
    with pytest.raises((ValueError, Exception)):
        _cert(credential.cert_pem).verify_directly_issued_by(_cert(pki.make_ca("two").cert_pem))


def _kubeconfig() -> tuple[str, pki.CertificateAuthority]:
    server_ca, client_ca = pki.make_ca("s"), pki.make_ca("c")
    credential = pki.issue_client(client_ca, "alice", "admin", timedelta(hours=1))
    return pki.kubeconfig(
        "demo", "https://10.0.0.2:6443", server_ca.cert_pem, "alice", credential
    ), client_ca


def test_kubeconfig_shape() -> None:
    text, client_ca = _kubeconfig()
    config = yaml.safe_load(text)
    assert config["current-context"] == "demo-alice"
    assert config["clusters"][0]["cluster"]["server"] == "https://10.0.0.2:6443"
    user_pem = base64.b64decode(config["users"][0]["user"]["client-certificate-data"]).decode()
    _cert(user_pem).verify_directly_issued_by(_cert(client_ca.cert_pem))


def test_kubectl_reads_it(tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    path = tmp_path / "kubeconfig"
    path.write_text(_kubeconfig()[0])
    out = subprocess.run(
        [
            kubectl,
            "config",
            "view",
            "--kubeconfig",
            str(path),
            "-o",
            "jsonpath={.clusters[0].cluster.server} {.contexts[0].context.user}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert out == "https://10.0.0.2:6443 alice"
