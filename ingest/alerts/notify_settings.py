"""Who is told of an alert, by which channel, and how: the ``[notifications]`` settings.

People have an e-mail address, a phone number or both; roles name groups of people.
Routes, per operator, send each kind of alert in each time window to an ordered list of
steps: the first step is told when the alert is raised, the next one when nobody has
acknowledged it ``escalate_after_min`` minutes later.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Literal, Self

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, model_validator

from ingest.alerts.rules import AlertKind

Window = Literal["nights", "weekends", "holidays", "working_hours"]
ChannelName = Literal["email", "sms"]

_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
# A plain address (no display name, no quoting): one mailbox, nothing a header could split.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$"
)
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Person(_Section):
    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, description="E.164, e.g. +33612345678")

    @model_validator(mode="after")
    def _reachable(self) -> Self:
        if self.email is None and self.phone is None:
            raise ValueError(f"{self.name}: give an email, a phone or both")
        if self.email is not None and not _EMAIL.match(self.email):
            raise ValueError(f"{self.name}: {self.email!r} is not an e-mail address")
        if self.phone is not None and not _PHONE.match(self.phone):
            raise ValueError(f"{self.name}: {self.phone!r} is not an E.164 number (+33…)")
        return self


def _both_channels() -> list[ChannelName]:
    return ["email", "sms"]


class Route(_Section):
    """Alerts of ``kinds`` (all when empty) in ``windows`` (any time when empty)."""

    operator: str = Field(min_length=1, max_length=64)
    kinds: list[AlertKind] = Field(default_factory=list)
    windows: list[Window] = Field(default_factory=list)
    steps: list[list[str]] = Field(
        min_length=1, description="recipients (person or role names), in escalation order"
    )
    channels: list[ChannelName] = Field(default_factory=_both_channels, min_length=1)
    escalate_after_min: float = Field(default=15, gt=0, le=7 * 24 * 60)
    remind_after_min: float | None = Field(
        default=None,
        gt=0,
        le=7 * 24 * 60,
        description="one reminder to the step's recipients if still unacknowledged",
    )

    @model_validator(mode="after")
    def _non_empty_steps(self) -> Self:
        if any(not step for step in self.steps):
            raise ValueError("every escalation step needs at least one recipient")
        return self


class SmtpSettings(_Section):
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(min_length=3, description="From: address")
    timeout_s: float = Field(default=10, gt=0)
    ca_file: Path | None = Field(
        default=None, description="trust this CA (PEM) for the server's certificate"
    )

    @model_validator(mode="after")
    def _credentials_together(self) -> Self:
        if (self.username is None) != (self.password is None):
            raise ValueError("smtp: give both username and password, or neither")
        return self


class SmsGatewaySettings(_Section):
    """An HTTP SMS provider. ``headers`` and ``body`` are templates (``string.Template``):
    ``$to``, ``$text``, ``$key`` as they are, ``$to_json``/``$text_json`` as JSON strings,
    ``$to_url``/``$text_url`` URL-encoded (the only ones ``url`` may use, with ``$key``)."""

    url: str = Field(pattern=r"^https?://[^\s\x00]+$")
    method: Literal["POST", "PUT"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str = Field(default='{"to": $to_json, "text": $text_json}')
    timeout_s: float = Field(default=10, gt=0)

    @model_validator(mode="after")
    def _templates_resolve(self) -> Self:
        names = {"to", "text", "key", "to_json", "text_json", "to_url", "text_url"}
        url_names = {"key", "to_url", "text_url"}
        checks = [("url", self.url, url_names), ("body", self.body, names)]
        checks += [(f"headers.{k}", v, names) for k, v in self.headers.items()]
        for where, template, allowed in checks:
            try:
                string.Template(template).substitute(dict.fromkeys(allowed, ""))
            except (KeyError, ValueError) as exc:
                raise ValueError(
                    f"sms.{where}: bad template ({exc}); use {', '.join(sorted(allowed))}"
                ) from None
        return self


class DeliverySettings(_Section):
    max_attempts: int = Field(default=8, ge=1, le=1000)
    backoff_s: float = Field(default=5, gt=0, description="first retry delay; doubles")
    max_backoff_s: float = Field(default=600, gt=0)


class ReportSchedule(_Section):
    """A report of each of ``vehicles`` as PDF, e-mailed to ``recipients``: the monthly
    cold-chain sheet on day ``day`` of the next month, the funder's year on day ``day``
    of the next January; from ``hour`` (local)."""

    report: Literal["coldchain_month", "funder_year"] = "coldchain_month"
    vehicles: list[str] = Field(min_length=1)
    recipients: list[str] = Field(min_length=1, description="person or role names")
    day: int = Field(default=1, ge=1, le=28)
    hour: int = Field(default=6, ge=0, le=23)


class NotificationSettings(_Section):
    public_base_url: AnyHttpUrl | None = Field(
        default=None, description="the web app's address, for the acknowledgement link"
    )
    night_start: int = Field(default=20, ge=0, le=23, description="local hour nights begin")
    night_end: int = Field(default=7, ge=0, le=23, description="local hour nights end")
    alsace_moselle: bool = Field(default=False, description="two more public holidays")
    route_alerts_raised_within_min: float = Field(
        default=60, gt=0, description="older alerts found unrouted (a restart) are not sent"
    )
    people: dict[str, Person] = Field(default_factory=dict)
    roles: dict[str, list[str]] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)
    smtp: SmtpSettings | None = None
    sms: SmsGatewaySettings | None = None
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    reports: list[ReportSchedule] = Field(default_factory=list)
    tick_s: float = Field(default=10, gt=0, description="how often escalations are checked")

    @model_validator(mode="after")
    def _names_resolve(self) -> Self:
        for name in [*self.people, *self.roles]:
            if not _NAME.match(name):
                raise ValueError(f"{name!r}: names are letters, digits, '_', '.', '-'")
        clash = sorted(set(self.people) & set(self.roles))
        if clash:
            raise ValueError(f"{', '.join(clash)}: both a person and a role")
        for role, members in self.roles.items():
            unknown = [m for m in members if m not in self.people]
            if unknown:
                raise ValueError(f"role {role}: unknown people {', '.join(unknown)}")
        for i, route in enumerate(self.routes):
            for step in route.steps:
                unknown = [r for r in step if r not in self.people and r not in self.roles]
                if unknown:
                    raise ValueError(f"routes[{i}]: unknown recipients {', '.join(unknown)}")
            if "email" in route.channels and self.smtp is None:
                raise ValueError(f"routes[{i}] sends e-mail but [notifications.smtp] is not set")
            if "sms" in route.channels and self.sms is None:
                raise ValueError(f"routes[{i}] sends SMS but [notifications.sms] is not set")
        for i, schedule in enumerate(self.reports):
            unknown = [
                r for r in schedule.recipients if r not in self.people and r not in self.roles
            ]
            if unknown:
                raise ValueError(f"reports[{i}]: unknown recipients {', '.join(unknown)}")
            if self.smtp is None:
                raise ValueError(f"reports[{i}] are e-mailed but [notifications.smtp] is not set")
        return self

    def members(self, recipient: str) -> list[str]:
        """The people a recipient name stands for."""
        return list(self.roles.get(recipient, [recipient]))

    def public(self) -> dict[str, object]:
        """What the API shows: everything but the SMTP password and SMS gateway headers
        (they carry the provider's key)."""
        data = self.model_dump(mode="json", exclude={"smtp": {"password"}})
        if self.sms is not None:
            data["sms"]["headers"] = {k: "…" for k in self.sms.headers}
        return data


class OperatorRouting(_Section):
    """One operator's people, roles and routes, set from the API: they replace the
    settings file's routes of that operator. Names must not be the settings file's."""

    people: dict[str, Person] = Field(default_factory=dict)
    roles: dict[str, list[str]] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)


def merged_routing(
    base: NotificationSettings, overrides: dict[str, OperatorRouting]
) -> NotificationSettings:
    """``base`` with each overridden operator's routes replaced, its people and roles
    added; ValueError (with the reason) if the result does not hold together."""
    people = dict(base.people)
    roles = dict(base.roles)
    routes = [r for r in base.routes if r.operator not in overrides]
    for operator, routing in sorted(overrides.items()):
        for route in routing.routes:
            if route.operator != operator:
                raise ValueError(f"a route of {operator} names operator {route.operator!r}")
        for name, person in routing.people.items():
            if name in people or name in roles:
                raise ValueError(f"{name!r} is already a person or a role of the settings")
            people[name] = person
        for name, members in routing.roles.items():
            if name in people or name in roles:
                raise ValueError(f"{name!r} is already a person or a role of the settings")
            roles[name] = members
        routes.extend(routing.routes)
    fields = {name: getattr(base, name) for name in NotificationSettings.model_fields}
    return NotificationSettings.model_validate(
        {**fields, "people": people, "roles": roles, "routes": routes}
    )
