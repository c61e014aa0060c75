"""Alerts end to end: telemetry through a real Mosquitto to a running ingest, alerts in
the API and pushed to a webhook receiver (a real HTTP server), across an ingest restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ingest.alerts.notify_settings import NotificationSettings
from ingest.itinerary import Itinerary
from ingest.settings import AlertSettings, DomainSettings
from ingest.store import Store
from protocol import (
    Batch,
    FridgeBatch,
    FridgeSample,
    GpsBatch,
    GpsSample,
    StatusBatch,
    StatusSample,
    encode,
    topic_for,
)
from protocol.clock import ManualClock
from simulators.fridge_device import FridgeThermalModel
from tests.support.domain import WebhookReceiver, running_domain_ingest, webhook_receiver
from tests.support.live import running_api
from tests.support.mosquitto import Mosquitto
from tests.support.smtp import PASSWORD, USER, SmtpServer
from tests.support.wait import wait_for

MIN = timedelta(minutes=1)


@contextmanager
def bus(broker: Mosquitto, vehicle: str, will: StatusBatch | None = None) -> Iterator[mqtt.Client]:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bus-{vehicle}", protocol=mqtt.MQTTv311
    )
    if will is not None:
        client.will_set(topic_for(vehicle, "status"), encode(will), qos=1, retain=True)
    client.connect(broker.host, broker.port, keepalive=30)
    client.loop_start()
    try:
        yield client
    finally:
        client.loop_stop()
        client.disconnect()


def publish(client: mqtt.Client, *batches: Batch) -> None:
    for b in batches:
        info = client.publish(topic_for(b.vehicle, b.stream), encode(b), qos=1)
        info.wait_for_publish(timeout=10)
        assert info.is_published()


def fridge_failure(start: datetime) -> list[FridgeSample]:
    """A reading a minute for 130 min: the compressor fails at minute 20 and is repaired at
    minute 80; the cabinet is above 8 °C from minute 31 to 86."""
    model = FridgeThermalModel(seed=1, random_doors=False)
    out = []
    for minute in range(130):
        if minute == 20:
            model.fail()
        if minute == 80:
            model.repair()
        temp = round(model.advance_to(minute * 60).temp_c, 1)
        out.append(FridgeSample(t=start + minute * MIN, temp_c=temp))
    return out


def alerts(api: Any, kind: str, **params: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api.get("/api/v1/alerts", params={"kind": kind, **params}).json()
    return found


def settings(receiver: WebhookReceiver, **alert_settings: Any) -> DomainSettings:
    return DomainSettings(
        alerts=AlertSettings(
            webhook_url=receiver.url,
            tick_s=0.1,
            webhook_backoff_s=0.1,
            **alert_settings,
        )
    )


def test_a_failing_fridge_raises_one_alert_that_survives_a_restart_and_clears(
    store: Store, itinerary: Itinerary, mosquitto: Mosquitto
) -> None:
    samples = fridge_failure(datetime.now(UTC).replace(microsecond=0) - 3 * timedelta(hours=1))
    warm = [i for i, s in enumerate(samples) if s.temp_c is not None and s.temp_c > 8]
    assert (warm[0], warm[-1], len(warm)) == (31, 86, 56)
    chunks = [samples[i : i + 10] for i in range(0, len(samples), 10)]
    fridge = [FridgeBatch(vehicle="vexin-01", seq=i, samples=c) for i, c in enumerate(chunks)]
    kind = "fridge_early_warning"
    with webhook_receiver() as receiver, bus(mosquitto, "vexin-01") as client:
        with running_domain_ingest(store, itinerary, mosquitto.url, settings(receiver)):
            # Minutes 0-69: 30 minutes above 8 °C by minute 61.
            publish(client, *fridge[:7])
            with running_api(store, token="coord-eure-token") as api:
                (raised,) = wait_for(lambda: alerts(api, kind, active="true"), what="alert")
            wait_for(lambda: receiver.events(kind), what="raise pushed")
            assert receiver.events(kind) == [("raised", raised["id"])]
            assert raised["severity"] == "warning"
            assert raised["since"] == (samples[61].t).isoformat().replace("+00:00", "Z")
        # Restarted; minutes 70-79, still warm: the same alert, not a new one.
        with running_domain_ingest(store, itinerary, mosquitto.url, settings(receiver)):
            publish(client, fridge[7])
            with running_api(store, token="coord-eure-token") as api:
                wait_for(
                    lambda: (
                        api.get("/api/v1/coldchain/alarms").json()[0]["end"]
                        == samples[79].t.isoformat().replace("+00:00", "Z")
                    ),
                    what="alarm extended to minute 79",
                )
                # Minutes 80-129: repaired, back in range from minute 87.
                publish(client, *fridge[8:])
                wait_for(lambda: alerts(api, kind, active="false"), what="alert cleared")
                everything = alerts(api, kind)
                (alarm,) = api.get("/api/v1/coldchain/alarms").json()
                ack = api.post(f"/api/v1/alerts/{raised['id']}/ack", json={"comment": "on it"})
            wait_for(lambda: len(receiver.events(kind)) == 2, what="clear pushed")
    assert [a["id"] for a in everything] == [raised["id"]]
    assert everything[0]["ended"] == samples[87].t.isoformat().replace("+00:00", "Z")
    assert receiver.events(kind) == [("raised", raised["id"]), ("cleared", raised["id"])]
    assert (alarm["kind"], alarm["ongoing"], alarm["peak_c"]) == ("early_warning", False, 15.8)
    assert alarm["start"] == samples[31].t.isoformat().replace("+00:00", "Z")
    assert ack.json()["acknowledged"]["by"] == "coord-eure"


def test_the_last_will_makes_a_bus_offline_until_it_comes_back(
    store: Store, itinerary: Itinerary, mosquitto: Mosquitto
) -> None:
    now = datetime.now(UTC)
    # A will newer than everything the bus sent before it dropped off: the newest news.
    will = StatusBatch(
        vehicle="caux-01", seq=1, samples=[StatusSample(t=now + timedelta(seconds=1), online=False)]
    )
    online = StatusBatch(vehicle="caux-01", seq=0, samples=[StatusSample(t=now, online=True)])
    with (
        webhook_receiver() as receiver,
        running_domain_ingest(store, itinerary, mosquitto.url, settings(receiver)),
        running_api(store, token="fm-caux-token") as api,
    ):
        with bus(mosquitto, "caux-01", will=will) as client:
            publish(client, online)
            wait_for(
                lambda: any(v["online"] for v in api.get("/api/v1/vehicles").json()),
                what="caux-01 online",
            )
            assert alerts(api, "offline") == []
            # The link drops without a goodbye: the broker publishes the will.
            client.loop_stop()
            client.socket().close()
            (offline,) = wait_for(lambda: alerts(api, "offline", active="true"), what="offline")
        assert offline["detail"]["reason"] == "status"
        assert offline["vehicle"] == "caux-01"
        wait_for(lambda: receiver.events("offline"), what="offline pushed")
        with bus(mosquitto, "caux-01") as client:
            back = StatusBatch(
                vehicle="caux-01",
                seq=2,
                samples=[StatusSample(t=datetime.now(UTC), online=True)],
            )
            publish(client, back)
            wait_for(lambda: alerts(api, "offline", active="false"), what="back online")
        wait_for(lambda: len(receiver.events("offline")) == 2, what="clear pushed")
    assert receiver.events("offline") == [("raised", offline["id"]), ("cleared", offline["id"])]


def test_an_old_status_or_last_will_never_marks_a_live_bus_offline(
    store: Store, itinerary: Itinerary, mosquitto: Mosquitto
) -> None:
    """A status older than fresh data (replayed, or delivered late after an outage) and a
    last will composed before the data sent since: the bus stays online, no alert; once it
    goes silent, the silence rule says offline."""
    now = datetime.now(UTC)
    clock = ManualClock(now)
    will = StatusBatch(
        vehicle="vexin-01", seq=0, samples=[StatusSample(t=now - 5 * MIN, online=False)]
    )

    def fix(seq: int, t: datetime) -> GpsBatch:
        return GpsBatch(
            vehicle="vexin-01", seq=seq, samples=[GpsSample(t=t, lat=49.24, lon=1.63, fix_mode=3)]
        )

    with (
        webhook_receiver() as receiver,
        running_domain_ingest(
            store, itinerary, mosquitto.url, settings(receiver, offline_after_s=60), clock=clock
        ),
        running_api(store) as api,
    ):

        def vexin() -> dict[str, Any]:
            (found,) = [v for v in api.get("/api/v1/vehicles").json() if v["id"] == "vexin-01"]
            return found

        with bus(mosquitto, "vexin-01", will=will) as client:
            publish(
                client,
                StatusBatch(vehicle="vexin-01", seq=1, samples=[StatusSample(t=now, online=True)]),
                fix(0, now),
            )
            # Delivered late: a status from before an outage, saying the link was down.
            late = StatusSample(t=now - 10 * MIN, online=False)
            publish(client, StatusBatch(vehicle="vexin-01", seq=2, samples=[late]), fix(1, now))
            wait_for(lambda: store.count_batches("vexin-01") == 4, what="all four stored")
            clock.advance(1)
            time.sleep(1)  # the evaluator wakes every 0.1 s
            assert alerts(api, "offline") == []
            assert vexin()["online"] is True
            publish(client, fix(2, now + timedelta(seconds=2)))
            # The link drops without a goodbye: the broker publishes the will, composed
            # when the bus connected, older than the fixes sent since.
            client.loop_stop()
            client.socket().close()
            wait_for(lambda: store.count_batches("vexin-01") == 6, what="the will stored")
        time.sleep(1)
        assert alerts(api, "offline") == []
        assert vexin()["online"] is True
        # Silent past the timeout: offline, by silence.
        clock.advance(61)
        (offline,) = wait_for(lambda: alerts(api, "offline", active="true"), what="offline")
        assert offline["detail"]["reason"] == "silence"
    assert receiver.events("offline") == [("raised", offline["id"])]


def test_silence_longer_than_the_timeout_is_offline(
    store: Store, itinerary: Itinerary, mosquitto: Mosquitto
) -> None:
    clock = ManualClock(datetime.now(UTC))
    receiver_settings: dict[str, Any] = {"offline_after_s": 60}
    with (
        webhook_receiver() as receiver,
        running_domain_ingest(
            store,
            itinerary,
            mosquitto.url,
            settings(receiver, **receiver_settings),
            clock=clock,
        ),
        running_api(store) as api,
        bus(mosquitto, "vexin-01") as client,
    ):

        def status(seq: int) -> StatusBatch:
            return StatusBatch(
                vehicle="vexin-01",
                seq=seq,
                samples=[StatusSample(t=datetime.now(UTC), online=True)],
            )

        publish(client, status(0))
        wait_for(
            lambda: any(v["last_seen"] for v in api.get("/api/v1/vehicles").json()),
            what="vexin-01 seen",
        )
        clock.advance(60)
        # Exactly the timeout: not yet; the ingest's clock ticks on.
        assert alerts(api, "offline") == []
        clock.advance(1)
        (offline,) = wait_for(lambda: alerts(api, "offline", active="true"), what="offline")
        assert offline["detail"]["reason"] == "silence"
        publish(client, status(1))
        wait_for(lambda: alerts(api, "offline", active="false"), what="heard again")
        wait_for(lambda: len(receiver.events("offline")) == 2, what="raise and clear pushed")


def test_a_fridge_alarm_reaches_people_by_email_and_sms_and_escalates_until_acknowledged(
    store: Store, itinerary: Itinerary, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Through Mosquitto and a running ingest to a real SMTP server and an HTTP server
    standing in for the SMS provider (the provider itself is the only fake), with the
    webhook beside them: one queue, one message per person and step."""
    samples = fridge_failure(datetime.now(UTC).replace(microsecond=0) - 3 * timedelta(hours=1))
    chunks = [samples[i : i + 10] for i in range(0, len(samples), 10)]
    fridge = [FridgeBatch(vehicle="vexin-01", seq=i, samples=c) for i, c in enumerate(chunks)]
    smtp = SmtpServer(tmp_path).start()
    try:
        with webhook_receiver() as receiver, webhook_receiver() as gateway:
            notifications = NotificationSettings.model_validate(
                {
                    "public_base_url": "https://medicobus.example",
                    "people": {
                        "claire": {
                            "name": "Claire",
                            "email": "pharmacie@doct-eure.example",
                            "phone": "+33612345678",
                        },
                        "cellule": {"name": "Cellule", "email": "cellule@doct-eure.example"},
                    },
                    "routes": [
                        {
                            "operator": "doct-eure",
                            "kinds": ["fridge_early_warning", "fridge_heat"],
                            "steps": [["claire"], ["cellule"]],
                            "escalate_after_min": 0.05,
                        }
                    ],
                    "smtp": {
                        "host": "127.0.0.1",
                        "port": smtp.port,
                        "username": USER,
                        "password": PASSWORD,
                        "sender": "alertes@medicobus.example",
                        "ca_file": str(smtp.cert),
                    },
                    "sms": {
                        "url": gateway.url,
                        "body": '{"event": "sms", "alert": {"to": $to_json, "text": $text_json}}',
                    },
                    "tick_s": 0.1,
                }
            )
            domain_settings = DomainSettings(
                alerts=settings(receiver).alerts, notifications=notifications
            )
            with (
                bus(mosquitto, "vexin-01") as client,
                running_domain_ingest(store, itinerary, mosquitto.url, domain_settings),
                running_api(store, token="coord-eure-token") as api,
            ):
                publish(client, *fridge[:7])
                (raised,) = wait_for(
                    lambda: alerts(api, "fridge_early_warning", active="true"), what="alert"
                )
                wait_for(lambda: len(smtp.mails()) >= 2, what="mail, then escalation")
                first, escalated = smtp.mails()[:2]
                wait_for(lambda: gateway.received, what="SMS")
                wait_for(lambda: receiver.events("fridge_early_warning"), what="webhook")
                ack = api.post(f"/api/v1/alerts/{raised['id']}/ack", json={"comment": "vu"})
                assert ack.status_code == 200
                time.sleep(1.0)  # ten more routing passes after the acknowledgement
    finally:
        smtp.stop()
    assert first.recipients == ["pharmacie@doct-eure.example"]
    peak = str(raised["detail"]["peak_c"]).replace(".", ",")
    assert f"Valeur : température maximale {peak} °C." in first.text
    assert f"Acquitter : https://medicobus.example/#/alertes?alert={raised['id']}" in first.text
    assert escalated.recipients == ["cellule@doct-eure.example"]
    assert escalated.message["Subject"].startswith("ESCALADE – ")
    assert len(smtp.mails()) == 2
    assert [m["alert"]["to"] for m in gateway.received] == ["+33612345678"]
    assert "réfrigérateur : alerte précoce" in gateway.received[0]["alert"]["text"]
