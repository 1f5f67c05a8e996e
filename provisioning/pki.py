"""Each cluster's certificate authorities and the kubeconfigs signed by them.

The portal makes a server CA (signs the API server's certificate, which K3s issues from
it on the first node) and a client CA (signs user certificates). Private keys are kept
Fernet-encrypted; kubeconfigs carry a fresh short-lived client certificate whose
organisation names the group the bootstrap manifests bind: portal:admin or portal:viewer.
"""

import base64
import secrets as random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CA_LIFETIME = timedelta(days=3650)
GROUPS = {"admin": "portal:admin", "viewer": "portal:viewer"}


@dataclass(frozen=True)
class CertificateAuthority:
    cert_pem: str
    key_pem: str


@dataclass(frozen=True)
class ClientCredential:
    cert_pem: str
    key_pem: str
    serial: str
    expires_at: datetime


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _name(common_name: str, organisation: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organisation:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    return x509.Name(parts)


def make_ca(common_name: str) -> CertificateAuthority:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return CertificateAuthority(
        cert.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key)
    )


def issue_client(
    ca: CertificateAuthority, username: str, role: str, ttl: timedelta
) -> ClientCredential:
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.encode())
    ca_key = serialization.load_pem_private_key(ca.key_pem.encode(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    serial = x509.random_serial_number()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(username, GROUPS[role]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + ttl)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return ClientCredential(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        key_pem=_key_pem(key),
        serial=format(serial, "x"),
        expires_at=now + ttl,
    )


def join_token() -> str:
    return random.token_hex(24)


def _b64(pem: str) -> str:
    return base64.b64encode(pem.encode()).decode()


def kubeconfig(
    cluster_name: str, server_url: str, server_ca_pem: str, user: str, credential: ClientCredential
) -> str:
    """A kubeconfig in the shape `kubectl config view` reads."""
    context = f"{cluster_name}-{user}"
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster_name,
                    "cluster": {
                        "server": server_url,
                        "certificate-authority-data": _b64(server_ca_pem),
                    },
                }
            ],
            "users": [
                {
                    "name": user,
                    "user": {
                        "client-certificate-data": _b64(credential.cert_pem),
                        "client-key-data": _b64(credential.key_pem),
                    },
                }
            ],
            "contexts": [{"name": context, "context": {"cluster": cluster_name, "user": user}}],
            "current-context": context,
            "preferences": {},
        },
        sort_keys=False,
    )
