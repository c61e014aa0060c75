"""A bus's broker credentials and the agent configuration that carries them: a password,
or a client certificate signed by the fleet's CA (:mod:`medicobus.certificates`).

The password is made here, hashed by Mosquitto's own ``mosquitto_passwd`` (its PBKDF2
format is Mosquitto's to define) and written to the broker's password file in place of the
bus's previous entry; the agent's TOML file gets it in clear, to be installed on the bus
only. Neither goes through a command line, where other users could read it.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from firmware_config.agent import BrokerConfig
from medicobus.certificates import CertificateError, issue_client, revoke_client
from protocol.models import VEHICLE_ID_PATTERN


class ProvisionError(ValueError):
    """What makes a bus's credentials impossible to create or revoke, said plainly."""


@dataclass(frozen=True)
class Provisioned:
    vehicle: str
    agent_config: Path
    ca_file: Path


def _entries(password_file: Path) -> list[str]:
    if not password_file.exists():
        return []
    return [line for line in password_file.read_text().splitlines() if line.strip()]


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)


def _hashed_entry(user: str, password: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "entry"
        _write_private(plain, f"{user}:{password}\n")
        try:
            subprocess.run(["mosquitto_passwd", "-U", str(plain)], check=True, capture_output=True)
        except FileNotFoundError:
            raise ProvisionError("mosquitto_passwd is missing: install mosquitto") from None
        except subprocess.CalledProcessError as exc:
            raise ProvisionError(
                f"mosquitto_passwd failed: {exc.stderr.decode().strip()}"
            ) from None
        return plain.read_text().strip()


def provision_bus(
    vehicle: str,
    *,
    password_file: Path | None,
    broker_url: str,
    ca_file: Path | None,
    out_dir: Path,
    ca_on_bus: Path = Path("/etc/medicobus/ca.crt"),
    ca_dir: Path | None = None,
) -> Provisioned:
    """New credentials for ``vehicle``, and ``out_dir``/agent.toml with them and
    ``out_dir``/ca.crt, to install on the bus (in ``ca_on_bus``'s folder). Without
    ``ca_dir``: a password, in the broker's ``password_file`` (replacing the bus's old
    one); the broker must reload its files (SIGHUP). With ``ca_dir`` (the fleet's CA): a
    client certificate whose common name is the bus's id, ``out_dir``/client.crt and
    client.key, for the broker's certificate listener; nothing to reload."""
    if not re.fullmatch(VEHICLE_ID_PATTERN, vehicle):
        raise ProvisionError(f"{vehicle!r} is not a vehicle id ({VEHICLE_ID_PATTERN})")
    on_bus = ca_on_bus.parent
    try:
        broker = BrokerConfig(
            url=broker_url,
            username=vehicle,
            ca_file=ca_on_bus,
            cert_file=on_bus / "client.crt" if ca_dir else None,
            key_file=on_bus / "client.key" if ca_dir else None,
        )
    except ValueError as exc:
        raise ProvisionError(f"broker url: {exc}") from None
    if not broker.tls:
        raise ProvisionError("buses reach the broker over TLS: give an mqtts:// url")
    ca_file = ca_file or (ca_dir / "ca.crt" if ca_dir else None)
    if ca_file is None or not ca_file.is_file():
        raise ProvisionError(f"{ca_file}: no such CA certificate")
    if ca_dir is None and password_file is None:
        raise ProvisionError("give the broker's password file, or the CA folder (--ca-dir)")
    section: dict[str, str] = {"url": broker_url, "username": vehicle, "ca_file": str(ca_on_bus)}
    if ca_dir is not None:
        try:
            issue_client(ca_dir, vehicle, out_dir)
        except CertificateError as exc:
            raise ProvisionError(str(exc)) from None
        section |= {"cert_file": str(broker.cert_file), "key_file": str(broker.key_file)}
    else:
        assert password_file is not None
        password = secrets.token_urlsafe(24)
        entry = _hashed_entry(vehicle, password)
        kept = [line for line in _entries(password_file) if line.split(":", 1)[0] != vehicle]
        _write_private(password_file, "\n".join([*kept, entry]) + "\n")
        section["password"] = password
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ca_file, out_dir / "ca.crt")
    agent_config = out_dir / "agent.toml"
    _write_private(
        agent_config,
        f"# {vehicle}: broker credentials made by `medicobus bus provision`.\n"
        "# Add the serial ports (gps, vedirect, fridge) and install it on the bus only.\n"
        + tomli_w.dumps({"vehicle": vehicle, "broker": section}),
    )
    return Provisioned(vehicle, agent_config, out_dir / "ca.crt")


def revoke_bus(
    vehicle: str, *, password_file: Path | None = None, ca_dir: Path | None = None
) -> list[str]:
    """Remove ``vehicle``'s password from the broker's password file and put its
    certificates in the CRL; the broker refuses them once it has read its files again
    (SIGHUP). Returns what was done."""
    if password_file is None and ca_dir is None:
        raise ProvisionError("give the broker's password file, the CA folder, or both")
    done = []
    if password_file is not None:
        entries = _entries(password_file)
        kept = [line for line in entries if line.split(":", 1)[0] != vehicle]
        if len(kept) < len(entries):
            _write_private(password_file, "".join(f"{line}\n" for line in kept))
            done.append(f"password removed from {password_file}")
    if ca_dir is not None:
        try:
            added = revoke_client(ca_dir, vehicle)
        except CertificateError:
            added = 0
        if added:
            done.append(f"{added} certificate(s) added to {ca_dir / 'crl.pem'}")
    if not done:
        raise ProvisionError(f"{vehicle!r} has no credentials to revoke there")
    return done
