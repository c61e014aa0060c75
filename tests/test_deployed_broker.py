"""The deployed Mosquitto configuration (``deploy/mosquitto.conf`` and its ACL, with the
certificates ``medicobus bus ca`` makes) run as it is, only its ports and paths moved:
buses over TLS only, by password or client certificate, client ids tied to usernames, the
ingest's queue safe from other accounts, revoked buses refused."""

from __future__ import annotations

import getpass
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.agent import Agent
from firmware_config.agent import AgentConfig, BrokerConfig, OutboxConfig
from firmware_config.loader import load_settings
from ingest.store import Store
from ingest.tables.intake import gps_samples
from medicobus.certificates import issue_client, make_authority
from medicobus.provision import ProvisionError, provision_bus
from protocol import GpsBatch, GpsSample, encode, topic_for
from tests.support.live import running_ingest
from tests.support.mosquitto import free_port, mosquitto_binary
from tests.support.wait import wait_for
from tests.test_stored_confirmation import Feeder, stored_times

DEPLOY = Path(__file__).parent.parent / "deploy"
INGEST = "medicobus-ingest"
PASSWORDS = {INGEST: "ingest-secret", "vexin-01": "vexin-secret", "caux-01": "caux-secret"}


@dataclass
class DeployedBroker:
    tls_port: int
    cert_port: int
    local_port: int
    ca: Path
    process: subprocess.Popen[bytes]
    log: Path


def deployed_config(
    text: str, workdir: Path, tls_port: int, cert_port: int, local_port: int
) -> str:
    """deploy/mosquitto.conf with this test's ports, files and user; nothing else changed."""
    replacements = [
        (r"^listener 8883$", f"listener {tls_port} 127.0.0.1"),
        (r"^listener 8884$", f"listener {cert_port} 127.0.0.1"),
        (r"^listener 1883 127\.0\.0\.1$", f"listener {local_port} 127.0.0.1"),
        (r"/etc/mosquitto/certs/", f"{workdir}/certs/"),
        (r"^persistence_location .*$", f"persistence_location {workdir}/"),
        (r"^password_file .*$", f"password_file {workdir}/passwd"),
        (r"^acl_file .*$", f"acl_file {DEPLOY / 'medicobus.acl'}"),
        (r"^log_dest syslog$", f"log_dest file {workdir}/mosquitto.log"),
    ]
    for pattern, replacement in replacements:
        text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
        assert count >= 1, f"deploy/mosquitto.conf no longer has {pattern!r}"
    return text + f"user {getpass.getuser()}\n"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[DeployedBroker]:
    workdir = tmp_path / "broker"
    workdir.mkdir()
    make_authority(workdir / "certs", ["127.0.0.1"])
    passwords = workdir / "passwd"
    passwords.write_text("".join(f"{u}:{p}\n" for u, p in PASSWORDS.items()))
    subprocess.run(["mosquitto_passwd", "-U", str(passwords)], check=True)
    tls_port, cert_port, local_port = free_port(), free_port(), free_port()
    config = workdir / "mosquitto.conf"
    config.write_text(
        deployed_config(
            (DEPLOY / "mosquitto.conf").read_text(), workdir, tls_port, cert_port, local_port
        )
    )
    process = subprocess.Popen(
        [mosquitto_binary(), "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    for port in (tls_port, cert_port, local_port):
        wait_for(lambda p=port: _listening(p), timeout=10, what=f"mosquitto on {port}")
    yield DeployedBroker(
        tls_port, cert_port, local_port, workdir / "certs" / "ca.crt", process, workdir
    )
    process.terminate()
    process.wait(timeout=10)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def connect(
    port: int,
    user: str,
    *,
    client_id: str,
    ca: Path | None = None,
    clean_session: bool = True,
    on_message: list[mqtt.MQTTMessage] | None = None,
) -> tuple[mqtt.Client, list[str]]:
    """A client connected (or refused); its disconnection reasons are listed."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session
    )
    client.username_pw_set(user, PASSWORDS[user])
    if ca is not None:
        client.tls_set(ca_certs=str(ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    gone: list[str] = []
    client.on_disconnect = lambda c, u, f, rc, p: gone.append(str(rc))
    if on_message is not None:
        client.on_message = lambda c, u, m: on_message.append(m)
    client.connect("127.0.0.1", port)
    client.loop_start()
    wait_for(client.is_connected, timeout=10, what=f"{user} connected as {client_id}")
    return client, gone


def close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def fixes_reach_the_ingest(broker: DeployedBroker, store: Store, agent: Agent) -> None:
    """The agent, fed fixes for 3 s, gets every one stored by an ingest on the broker's
    local listener, and empties its outbox once the ingest confirmed them."""
    ingest = BrokerConfig(
        url=f"mqtt://127.0.0.1:{broker.local_port}",
        client_id=INGEST,
        username=INGEST,
        password=PASSWORDS[INGEST],
    )
    with running_ingest(store, ingest.url, INGEST, broker_config=ingest):
        agent.start()
        try:
            feeder = Feeder(agent, datetime.now(UTC) - timedelta(hours=1)).start()
            time.sleep(3)
            feeder.stop()
            wait_for(
                lambda: (
                    set(stored_times(store, gps_samples, agent.config.vehicle)) == set(feeder.gps)
                ),
                timeout=30,
                what="every fix the agent read, stored",
            )
            wait_for(lambda: agent.outbox_depth == 0, timeout=30, what="the outbox emptied")
        finally:
            agent.stop()


def test_buses_reach_the_broker_over_tls_only(broker: DeployedBroker) -> None:
    bus, _ = connect(broker.tls_port, "vexin-01", client_id="vexin-01", ca=broker.ca)
    close(bus)
    # Plain MQTT on the TLS port: the handshake fails, nothing is answered.
    plain = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="vexin-01")
    plain.username_pw_set("vexin-01", PASSWORDS["vexin-01"])
    plain.connect("127.0.0.1", broker.tls_port)
    plain.loop_start()
    time.sleep(2)
    assert not plain.is_connected()
    plain.loop_stop()
    # A client that checks the certificate against another CA refuses the broker.
    other = broker.log / "other"
    make_authority(other, ["127.0.0.1"])
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(broker.tls_port, "vexin-01", client_id="x", ca=other / "ca.crt")
    # The plain listener is on the loopback interface only.
    text = (DEPLOY / "mosquitto.conf").read_text()
    listeners = re.findall(r"^listener .*$", text, flags=re.MULTILINE)
    assert listeners == ["listener 8883", "listener 8884", "listener 1883 127.0.0.1"]


def test_an_agent_over_tls_reaches_the_ingest(
    tmp_path: Path, broker: DeployedBroker, store: Store
) -> None:
    agent = Agent(
        AgentConfig(
            vehicle="vexin-01",
            state_dir=tmp_path / "vexin-01",
            status_interval_s=2,
            broker=BrokerConfig(
                url=f"mqtts://127.0.0.1:{broker.tls_port}",
                username="vexin-01",
                password=PASSWORDS["vexin-01"],
                ca_file=broker.ca,
            ),
            outbox=OutboxConfig(confirm_timeout_s=3, confirm_timeout_max_s=6),
        )
    )
    fixes_reach_the_ingest(broker, store, agent)


def fixes(n: int, seq: int) -> bytes:
    t0 = datetime(2026, 11, 16, 8, 0, tzinfo=UTC) + timedelta(minutes=seq)
    return encode(
        GpsBatch(
            vehicle="vexin-01",
            seq=seq,
            samples=[
                GpsSample(t=t0 + timedelta(seconds=i), lat=49.2, lon=1.6, fix_mode=3)
                for i in range(n)
            ],
        )
    )


def test_a_bus_cannot_wipe_the_ingests_queue_nor_kick_another_bus(
    broker: DeployedBroker,
) -> None:
    received: list[mqtt.MQTTMessage] = []
    ingest, _ = connect(
        broker.local_port, INGEST, client_id=INGEST, clean_session=False, on_message=received
    )
    ingest.subscribe("medicobus/v1/+/+", qos=1)
    time.sleep(1)
    close(ingest)
    bus, bus_gone = connect(broker.tls_port, "vexin-01", client_id="vexin-01", ca=broker.ca)
    for seq in range(20):
        bus.publish(topic_for("vexin-01", "gps"), fixes(2, seq), qos=1).wait_for_publish(5)
    # A bus's credentials asking for the ingest's id, with a clean session: the broker
    # gives the connection the username as id, so the ingest's session is untouched.
    intruder, _ = connect(
        broker.tls_port, "caux-01", client_id=INGEST, ca=broker.ca, clean_session=True
    )
    close(intruder)
    # caux-01's credentials asking for vexin-01's id do not kick vexin-01 off.
    other_bus, _ = connect(broker.tls_port, "caux-01", client_id="vexin-01", ca=broker.ca)
    for seq in range(20, 25):
        bus.publish(topic_for("vexin-01", "gps"), fixes(2, seq), qos=1).wait_for_publish(5)
    close(other_bus)
    ingest, _ = connect(
        broker.local_port, INGEST, client_id=INGEST, clean_session=False, on_message=received
    )
    wait_for(lambda: len(received) >= 25, timeout=15, what="the 25 queued batches")
    time.sleep(1)
    assert len(received) == 25
    assert bus_gone == []  # vexin-01 stayed connected throughout
    close(ingest)
    close(bus)


def medicobus(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "medicobus"), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def refused(port: int, user: str, password: str, ca: Path) -> bool:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user)
    client.username_pw_set(user, password)
    client.tls_set(ca_certs=str(ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    codes: list[str] = []
    client.on_connect = lambda c, u, f, rc, p: codes.append(str(rc))
    client.connect("127.0.0.1", port)
    client.loop_start()
    wait_for(lambda: codes, timeout=10, what="the broker's answer")
    client.disconnect()
    client.loop_stop()
    return codes[0] != "Success"


def test_a_bus_provisioned_by_the_cli_publishes_and_once_revoked_is_refused(
    tmp_path: Path, broker: DeployedBroker, store: Store
) -> None:
    passwords = broker.log / "passwd"
    old = PASSWORDS["vexin-01"]
    out = tmp_path / "vexin-01-setup"
    made = medicobus(
        "bus", "provision", "vexin-01",
        "--password-file", str(passwords),
        "--broker-url", f"mqtts://127.0.0.1:{broker.tls_port}",
        "--ca", str(broker.ca),
        "--out", str(out),
        "--ca-on-bus", str(out / "ca.crt"),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert oct((out / "agent.toml").stat().st_mode & 0o777) == "0o600"
    assert oct(passwords.stat().st_mode & 0o777) == "0o600"
    # Other accounts are kept; vexin-01's hash is new.
    users = [line.split(":")[0] for line in passwords.read_text().splitlines()]
    assert sorted(users) == sorted(PASSWORDS)
    broker.process.send_signal(signal.SIGHUP)
    config = load_settings(AgentConfig, out / "agent.toml")
    assert config.broker.password and config.broker.password != old
    wait_for(
        lambda: refused(broker.tls_port, "vexin-01", old, broker.ca),
        timeout=10,
        what="the old password refused",
    )
    agent = Agent(
        config.model_copy(update={"state_dir": tmp_path / "state", "status_interval_s": 2})
    )
    fixes_reach_the_ingest(broker, store, agent)
    revoked = medicobus("bus", "revoke", "vexin-01", "--password-file", str(passwords))
    assert revoked.returncode == 0, revoked.stderr
    broker.process.send_signal(signal.SIGHUP)
    assert config.broker.password is not None
    wait_for(
        lambda: refused(broker.tls_port, "vexin-01", config.broker.password or "", broker.ca),
        timeout=10,
        what="the revoked bus refused",
    )
    again = medicobus("bus", "revoke", "vexin-01", "--password-file", str(passwords))
    assert again.returncode != 0 and "no credentials" in again.stderr


@pytest.mark.parametrize(
    ("vehicle", "url", "words"),
    [
        ("vexin 01", "mqtts://h:8883", "not a vehicle id"),
        ("x" * 65, "mqtts://h:8883", "not a vehicle id"),
        ("vexin-01\x00", "mqtts://h:8883", "not a vehicle id"),
        ("vexin-01", "mqtt://h:1883", "TLS"),
        ("vexin-01", "ftp://h", "broker url"),
    ],
)
def test_provisioning_refuses_bad_input_and_writes_nothing(
    tmp_path: Path, vehicle: str, url: str, words: str
) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    passwords = tmp_path / "passwd"
    with pytest.raises(ProvisionError, match=words):
        provision_bus(
            vehicle, password_file=passwords, broker_url=url, ca_file=ca, out_dir=tmp_path / "o"
        )
    assert not passwords.exists() and not (tmp_path / "o").exists()


def connected_with_certificate(port: int, folder: Path, ca: Path) -> str:
    """The broker's answer to a client presenting ``folder``'s client certificate (no
    password): "Success", a refusal, or "closed" when the handshake itself is refused."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="whoever")
    client.tls_set(
        ca_certs=str(ca),
        certfile=str(folder / "client.crt"),
        keyfile=str(folder / "client.key"),
        tls_version=ssl.PROTOCOL_TLS_CLIENT,
    )
    codes: list[str] = []
    client.on_connect = lambda c, u, f, rc, p: codes.append(str(rc))
    client.on_disconnect = lambda c, u, f, rc, p: codes.append("closed")
    try:
        client.connect("127.0.0.1", port)
    except (ssl.SSLError, OSError):
        return "closed"
    client.loop_start()
    wait_for(lambda: codes, timeout=10, what="the broker's answer")
    client.disconnect()
    client.loop_stop()
    return codes[0]


def test_a_bus_with_a_client_certificate_publishes_and_once_revoked_is_refused(
    tmp_path: Path, broker: DeployedBroker, store: Store
) -> None:
    certs = broker.log / "certs"
    out = tmp_path / "caux-01-setup"
    made = medicobus(
        "bus", "provision", "caux-01",
        "--ca-dir", str(certs),
        "--broker-url", f"mqtts://127.0.0.1:{broker.cert_port}",
        "--out", str(out),
        "--ca-on-bus", str(out / "ca.crt"),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert oct((out / "client.key").stat().st_mode & 0o777) == "0o600"
    config = load_settings(AgentConfig, out / "agent.toml")
    assert config.broker.password is None
    assert config.broker.cert_file == out / "client.crt"
    # The certificate's common name is the username: caux-01 publishes under its topics.
    agent = Agent(
        config.model_copy(update={"state_dir": tmp_path / "state", "status_interval_s": 2})
    )
    fixes_reach_the_ingest(broker, store, agent)
    # No certificate, or one from another CA: the handshake is refused.
    stranger = tmp_path / "stranger"
    make_authority(stranger, ["127.0.0.1"])
    issue_client(stranger, "caux-01", stranger / "bus")
    assert connected_with_certificate(broker.cert_port, stranger / "bus", broker.ca) == "closed"
    assert connected_with_certificate(broker.cert_port, out, broker.ca) == "Success"
    revoked = medicobus("bus", "revoke", "caux-01", "--ca-dir", str(certs))
    assert revoked.returncode == 0, revoked.stderr
    assert "1 certificate(s) added" in revoked.stdout
    broker.process.send_signal(signal.SIGHUP)
    wait_for(
        lambda: connected_with_certificate(broker.cert_port, out, broker.ca) != "Success",
        timeout=10,
        what="the revoked certificate refused",
    )
    # A bus provisioned again gets a new certificate that works; the revoked one stays out.
    again = tmp_path / "caux-01-again"
    assert medicobus(
        "bus", "provision", "caux-01", "--ca-dir", str(certs),
        "--broker-url", f"mqtts://127.0.0.1:{broker.cert_port}", "--out", str(again),
    ).returncode == 0  # fmt: skip
    assert connected_with_certificate(broker.cert_port, again, broker.ca) == "Success"
    assert connected_with_certificate(broker.cert_port, out, broker.ca) != "Success"


def test_the_certificate_authority_refuses_what_it_cannot_sign(tmp_path: Path) -> None:
    for hosts, words in (([], "--host"), (["bad host"], "neither a host")):
        made = medicobus("bus", "ca", "--ca-dir", str(tmp_path / "ca"),
                         *[a for h in hosts for a in ("--host", h)])  # fmt: skip
        assert made.returncode == 2 and words in made.stderr, made.stderr
    assert not (tmp_path / "ca" / "ca.key").exists()
    nothing = medicobus("bus", "revoke", "caux-01", "--ca-dir", str(tmp_path / "ca"))
    assert nothing.returncode == 2 and "no credentials" in nothing.stderr
    no_ca = medicobus(
        "bus", "provision", "caux-01", "--ca-dir", str(tmp_path / "none"),
        "--broker-url", "mqtts://h:8884", "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert no_ca.returncode == 2 and "no such CA" in no_ca.stderr
    # Renewing keeps the CA: buses need no change.
    assert medicobus("bus", "ca", "--ca-dir", str(tmp_path / "ca"), "--host", "h").returncode == 0
    first = (tmp_path / "ca" / "ca.crt").read_bytes()
    renewed = medicobus("bus", "ca", "--ca-dir", str(tmp_path / "ca"), "--host", "h")
    assert renewed.returncode == 0
    assert renewed.stdout.splitlines()[0].endswith(": server.crt, server.key, crl.pem")
    assert (tmp_path / "ca" / "ca.crt").read_bytes() == first
    assert oct((tmp_path / "ca" / "ca.key").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ({"url": "mqtts://h:8884", "cert_file": "/c.crt"}, "go together"),
        ({"url": "mqtts://h:8884", "key_file": "/c.key"}, "go together"),
        ({"url": "mqtt://h:1883", "cert_file": "/c.crt", "key_file": "/c.key"}, "mqtts"),
    ],
)
def test_an_agents_client_certificate_is_checked_when_read(
    section: dict[str, str], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        BrokerConfig.model_validate(section)


def caux_fixes(seq: int) -> bytes:
    t0 = datetime(2026, 11, 16, 8, 0, tzinfo=UTC) + timedelta(minutes=seq)
    return encode(
        GpsBatch(
            vehicle="caux-01",
            seq=seq,
            samples=[GpsSample(t=t0, lat=49.6, lon=0.75, fix_mode=3)],
        )
    )


def test_each_account_writes_and_reads_only_its_own_topics(broker: DeployedBroker) -> None:
    to_ingest: list[mqtt.MQTTMessage] = []
    ingest, _ = connect(broker.local_port, INGEST, client_id=INGEST, on_message=to_ingest)
    ingest.subscribe("medicobus/v1/#", qos=1)
    spied: list[mqtt.MQTTMessage] = []
    caux, _ = connect(
        broker.tls_port, "caux-01", client_id="caux-01", ca=broker.ca, on_message=spied
    )
    caux.subscribe("#", qos=1)
    vexin, _ = connect(broker.tls_port, "vexin-01", client_id="vexin-01", ca=broker.ca)
    time.sleep(0.5)
    # caux-01 writes under vexin-01's topics, then under its own; the ingest's account
    # under its own name; vexin-01 under its own; the ingest confirms to vexin-01.
    caux.publish(topic_for("vexin-01", "gps"), fixes(1, 900), qos=1).wait_for_publish(5)
    ingest.publish("medicobus/v1/medicobus-ingest/gps", fixes(1, 901), qos=1).wait_for_publish(5)
    vexin.publish(topic_for("vexin-01", "gps"), fixes(1, 902), qos=1).wait_for_publish(5)
    ingest.publish("medicobus/stored/v1/vexin-01", b"{}", qos=1).wait_for_publish(5)
    caux.publish(topic_for("caux-01", "gps"), caux_fixes(903), qos=1).wait_for_publish(5)
    wait_for(lambda: len(to_ingest) >= 2, timeout=10, what="the two allowed batches")
    time.sleep(1)
    assert sorted((m.topic, m.payload) for m in to_ingest) == sorted(
        [
            (topic_for("vexin-01", "gps"), fixes(1, 902)),
            (topic_for("caux-01", "gps"), caux_fixes(903)),
        ]
    )
    # A bus subscribed to everything gets nothing: not another bus's telemetry nor its
    # confirmation, not even its own telemetry back.
    assert spied == []
    for client in (caux, vexin, ingest):
        close(client)
    # Anonymous clients and wrong passwords are refused.
    assert refused(broker.tls_port, "vexin-01", "not-the-password", broker.ca)
    anonymous = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="anon")
    anonymous.tls_set(ca_certs=str(broker.ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    codes: list[str] = []
    anonymous.on_connect = lambda c, u, f, rc, p: codes.append(str(rc))
    anonymous.connect("127.0.0.1", broker.tls_port)
    anonymous.loop_start()
    wait_for(lambda: codes, timeout=10, what="the broker's answer")
    anonymous.loop_stop()
    assert codes[0] != "Success"
