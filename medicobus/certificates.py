"""The fleet's certificate authority, with the ``cryptography`` package: the CA, the
broker's server certificate, each bus's client certificate (its common name is the bus's
id, which the broker takes as its username), and the list of revoked certificates (CRL)
the broker checks. Everything lives in one folder, kept on the broker's machine:

- ``ca.crt`` (install on every bus), ``ca.key`` (private: keep it there, or offline);
- ``server.crt`` and ``server.key`` for Mosquitto's ``certfile`` and ``keyfile``;
- ``crl.pem`` for Mosquitto's ``crlfile``, signed again at each revocation and at each
  renewal (``medicobus bus ca``): it is valid for a year, and an expired CRL makes the
  broker refuse every certificate;
- ``issued.json``: the serial numbers issued to each bus, so that revoking a bus revokes
  them all.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_YEARS = 10
SERVER_DAYS = 825
CLIENT_DAYS = 825
CRL_DAYS = 365


class CertificateError(ValueError):
    """What makes a certificate impossible to make or revoke, said plainly."""


@dataclass(frozen=True)
class ClientCertificate:
    vehicle: str
    cert: Path
    key: Path
    serial: int


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = 0o600 if private else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, mode)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "medicobus"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _load_ca(folder: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes())
        key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), None)
    except FileNotFoundError:
        raise CertificateError(f"{folder}: no CA here; make it with `medicobus bus ca`") from None
    except ValueError as exc:
        raise CertificateError(f"{folder}: the CA cannot be read ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError(f"{folder}/ca.key is not a key this command made")
    return cert, key


def _issued(folder: Path) -> dict[str, list[int]]:
    path = folder / "issued.json"
    if not path.exists():
        return {}
    found: dict[str, list[int]] = json.loads(path.read_text())
    return found


def _revoked(folder: Path) -> list[x509.RevokedCertificate]:
    path = folder / "crl.pem"
    if not path.exists():
        return []
    return list(x509.load_pem_x509_crl(path.read_bytes()))


def _sign_crl(folder: Path, revoked: list[x509.RevokedCertificate], now: datetime) -> None:
    ca, key = _load_ca(folder)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(now)
        .next_update(now + timedelta(days=CRL_DAYS))
    )
    for entry in revoked:
        builder = builder.add_revoked_certificate(entry)
    crl = builder.sign(key, hashes.SHA256())
    _write(folder / "crl.pem", crl.public_bytes(serialization.Encoding.PEM))


def make_authority(folder: Path, hosts: list[str], now: datetime | None = None) -> list[str]:
    """The CA (kept if there is one already, so buses need no change), a new server
    certificate for ``hosts`` (names or IP addresses the buses reach the broker by), and
    the CRL signed again. Returns what was written."""
    now = now or datetime.now(UTC)
    if not hosts:
        raise CertificateError("name at least one host the buses reach the broker by")
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            if not host or any(c.isspace() or ord(c) < 32 for c in host) or len(host) > 253:
                raise CertificateError(f"{host!r} is neither a host name nor an IP") from None
            sans.append(x509.DNSName(host))
    written = []
    if not (folder / "ca.key").exists():
        key = _new_key()
        name = _name("medicobus fleet CA")
        ca = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=365 * CA_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
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
        _write(folder / "ca.key", _key_pem(key), private=True)
        _write(folder / "ca.crt", ca.public_bytes(serialization.Encoding.PEM))
        written += ["ca.crt", "ca.key"]
    ca, ca_key = _load_ca(folder)
    key = _new_key()
    server = (
        _leaf(ca, key, hosts[0], now, SERVER_DAYS)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(folder / "server.key", _key_pem(key), private=True)
    _write(folder / "server.crt", server.public_bytes(serialization.Encoding.PEM))
    _sign_crl(folder, _revoked(folder), now)
    return [*written, "server.crt", "server.key", "crl.pem"]


def _leaf(
    ca: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    common_name: str,
    now: datetime,
    days: int,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )


def issue_client(
    folder: Path, vehicle: str, out_dir: Path, now: datetime | None = None
) -> ClientCertificate:
    """A client certificate for ``vehicle`` (its common name), signed by the CA, written
    with its key to ``out_dir`` as ``client.crt`` and ``client.key``."""
    now = now or datetime.now(UTC)
    ca, ca_key = _load_ca(folder)
    key = _new_key()
    cert = (
        _leaf(ca, key, vehicle, now, CLIENT_DAYS)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    issued = _issued(folder)
    issued.setdefault(vehicle, []).append(cert.serial_number)
    _write(folder / "issued.json", json.dumps(issued, indent=1).encode())
    _write(out_dir / "client.key", _key_pem(key), private=True)
    _write(out_dir / "client.crt", cert.public_bytes(serialization.Encoding.PEM))
    return ClientCertificate(
        vehicle, out_dir / "client.crt", out_dir / "client.key", cert.serial_number
    )


def revoke_client(folder: Path, vehicle: str, now: datetime | None = None) -> int:
    """Every certificate issued to ``vehicle`` goes into the CRL; returns how many were
    added. The broker refuses them once it has read the CRL again."""
    now = now or datetime.now(UTC)
    serials = _issued(folder).get(vehicle, [])
    if not serials:
        raise CertificateError(f"{vehicle!r} has no certificate issued by {folder}")
    revoked = _revoked(folder)
    known = {entry.serial_number for entry in revoked}
    added = [s for s in serials if s not in known]
    for serial in added:
        revoked.append(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
        )
    _sign_crl(folder, revoked, now)
    return len(added)
