"""A bus's broker credentials and the agent configuration that carries them.

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
    password_file: Path,
    broker_url: str,
    ca_file: Path,
    out_dir: Path,
    ca_on_bus: Path = Path("/etc/medicobus/ca.crt"),
) -> Provisioned:
    """New credentials for ``vehicle`` in the broker's ``password_file`` (replacing its
    old ones), and ``out_dir``/agent.toml with them and ``out_dir``/ca.crt, to install on
    the bus (the CA at ``ca_on_bus``). The broker must reload its files (SIGHUP)."""
    if not re.fullmatch(VEHICLE_ID_PATTERN, vehicle):
        raise ProvisionError(f"{vehicle!r} is not a vehicle id ({VEHICLE_ID_PATTERN})")
    try:
        broker = BrokerConfig(url=broker_url, username=vehicle, ca_file=ca_on_bus)
    except ValueError as exc:
        raise ProvisionError(f"broker url: {exc}") from None
    if not broker.tls:
        raise ProvisionError("buses reach the broker over TLS: give an mqtts:// url")
    if not ca_file.is_file():
        raise ProvisionError(f"{ca_file}: no such CA certificate")
    password = secrets.token_urlsafe(24)
    entry = _hashed_entry(vehicle, password)
    kept = [line for line in _entries(password_file) if line.split(":", 1)[0] != vehicle]
    _write_private(password_file, "\n".join([*kept, entry]) + "\n")
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ca_file, out_dir / "ca.crt")
    config = {
        "vehicle": vehicle,
        "broker": {
            "url": broker_url,
            "username": vehicle,
            "password": password,
            "ca_file": str(ca_on_bus),
        },
    }
    agent_config = out_dir / "agent.toml"
    _write_private(
        agent_config,
        f"# {vehicle}: broker credentials made by `medicobus bus provision`.\n"
        "# Add the serial ports (gps, vedirect, fridge) and install it on the bus only.\n"
        + tomli_w.dumps(config),
    )
    return Provisioned(vehicle, agent_config, out_dir / "ca.crt")


def revoke_bus(vehicle: str, *, password_file: Path) -> None:
    """Remove ``vehicle``'s credentials from the broker's password file; the broker
    refuses them once it has reloaded its files (SIGHUP)."""
    entries = _entries(password_file)
    kept = [line for line in entries if line.split(":", 1)[0] != vehicle]
    if len(kept) == len(entries):
        raise ProvisionError(f"{vehicle!r} has no credentials in {password_file}")
    _write_private(password_file, "".join(f"{line}\n" for line in kept))
