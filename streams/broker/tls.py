"""Throwaway certificates for the local secured Kafka: a CA, the broker's certificate, and one
client certificate per user (mutual TLS), made with ``cryptography`` (no openssl or keytool).

Everything lives in one folder (``<state_dir>/security``): ``ca.pem`` is what clients trust
(``ssl.ca.location``); ``broker.pem`` holds the broker's key and certificate chain in the form
Kafka reads as a PEM keystore; ``<user>.crt`` / ``<user>.key`` are a user's client certificate,
whose subject ``CN=<user>`` the broker maps to the principal ``User:<user>``. Keys are written
0600. The CA's key is kept beside them so that a user added later gets a certificate from the
same CA; it is a local test CA, never one to trust elsewhere.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from streams.broker.process import write_file

VALID_DAYS = 825  # the longest validity TLS clients accept for a leaf certificate
BROKER_CN = "broker"  # the broker's own principal (inter-broker traffic on an SSL listener)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # unencrypted PKCS#8: what Kafka's PEM keystore and librdkafka both read without a password
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class LocalCA:
    """A CA kept in ``folder``: created on first use, loaded after."""

    folder: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def ca_file(self) -> Path:
        """What clients trust (``ssl.ca.location``) and the broker's truststore."""
        return self.folder / "ca.pem"

    @classmethod
    def open(cls, folder: Path) -> LocalCA:
        """The CA in ``folder``, made now if there is none."""
        key_file, cert_file = folder / "ca.key", folder / "ca.pem"
        if key_file.is_file() and cert_file.is_file():
            key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            return cls(folder, key, x509.load_pem_x509_certificate(cert_file.read_bytes()))
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "darkroom local test CA")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        write_file(key_file, _key_pem(key), private=True)
        write_file(cert_file, _cert_pem(cert))
        return cls(folder, key, cert)

    def issue(
        self, common_name: str, hosts: tuple[str, ...] = (), server: bool = False
    ) -> tuple[bytes, bytes]:
        """(certificate PEM, key PEM) for ``common_name``; a server certificate names
        ``hosts`` (DNS names or IP addresses) and may also act as a client (inter-broker)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        if server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        )
        if hosts:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_general_name(h) for h in hosts]), critical=False
            )
        cert = builder.sign(self.key, hashes.SHA256())
        return _cert_pem(cert), _key_pem(key)

    def broker_keystore(self, hosts: tuple[str, ...]) -> Path:
        """``broker.pem`` (key, then certificate and CA: a PEM keystore), made once."""
        path = self.folder / "broker.pem"
        if not path.is_file():
            cert, key = self.issue(BROKER_CN, hosts, server=True)
            write_file(path, key + cert + _cert_pem(self.cert), private=True)
        return path

    def client_files(self, user: str) -> tuple[Path, Path]:
        """(certificate, key) of ``user``'s client certificate, made once."""
        cert_file, key_file = self.folder / f"{user}.crt", self.folder / f"{user}.key"
        if not (cert_file.is_file() and key_file.is_file()):
            cert, key = self.issue(user)
            write_file(key_file, key, private=True)
            write_file(cert_file, cert)
        return cert_file, key_file


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
