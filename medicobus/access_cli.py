"""Who may use the API, from the server's command line: personal tokens for scripts, and
accounts of people who sign in to the web app with a password."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from medicobus.cli_support import CommandLine, ConfigOption, api_store, fail, stamp

tokens_app = typer.Typer(
    help="Personal API tokens kept in the database: made, listed, revoked without a restart.",
    no_args_is_help=True,
)
users_app = typer.Typer(
    help="Accounts of people who sign in with an e-mail and a password (Argon2id).",
    no_args_is_help=True,
)
ROLES_HELP = "fleet_manager, coordinator, engineer, funder, admin"


@tokens_app.command("create")
def tokens_create(
    config: ConfigOption,
    person: Annotated[str, typer.Option(help="the person the token is for")],
    role: Annotated[str, typer.Option(help="fleet_manager, coordinator, engineer, funder, admin")],
    operator: Annotated[str | None, typer.Option(help="their operator (all but admins)")] = None,
    label: Annotated[str, typer.Option(help="what the token is for, e.g. a script")] = "",
) -> None:
    """Make a personal token kept (hashed) in the API's database; print it once."""
    from api.auth import ApiUser, Role, hash_token, new_token
    from ingest.services import tokens
    from protocol.clock import SystemClock

    token = new_token()
    try:
        user = ApiUser(
            name=person, role=Role(role), operator=operator, token_sha256=hash_token(token)
        )
        if user.role is not Role.ADMIN and user.operator is None:
            raise ValueError(f"a {role} needs an operator (--operator)")
    except ValueError as exc:
        fail(exc)
    with api_store(config) as store:
        token_id = tokens.create(
            store,
            CommandLine(),
            label=(label or f"{person}'s token")[:100],
            person=user.name,
            role=user.role.value,
            operator=user.operator,
            token_sha256=user.token_sha256,
            now=SystemClock().now(),
        )
    typer.echo(f"token {token_id} for {person} (give it to them, it is not stored): {token}")


@tokens_app.command("list")
def tokens_list(config: ConfigOption) -> None:
    """Every token: id, person, role, operator, label, made, last used, revoked."""
    from ingest.services import tokens

    with api_store(config) as store:
        found = tokens.tokens(store)
    for t in found:
        state = f"revoked {stamp(t.revoked_at)}" if t.revoked_at else "valid"
        used = stamp(t.last_used_at) if t.last_used_at else "never"
        typer.echo(
            f"{t.id}\t{t.person}\t{t.role}\t{t.operator or '-'}\t{t.label}\t"
            f"made {stamp(t.created_at)}\tlast used {used}\t{state}"
        )


@tokens_app.command("revoke")
def tokens_revoke(
    config: ConfigOption, token_id: Annotated[int, typer.Argument(help="the token's id")]
) -> None:
    """Revoke a token: the API refuses it from the next request on."""
    from ingest.services import tokens
    from ingest.services.common import NotFoundError
    from protocol.clock import SystemClock

    try:
        with api_store(config) as store:
            revoked = tokens.revoke(store, CommandLine(), token_id, SystemClock().now())
    except NotFoundError as exc:
        fail(exc)
    typer.echo(f"token {revoked.id} of {revoked.person} revoked")


def _password(from_stdin: bool) -> tuple[str, bool]:
    """The password read from standard input, or a new one to print; and whether it was
    made here."""
    from ingest.services.accounts import new_password

    if not from_stdin:
        return new_password(), True
    return sys.stdin.readline().rstrip("\r\n"), False


PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="read the password from standard input (else one is made and printed once)",
    ),
]


@users_app.command("add")
def users_add(
    *,
    config: ConfigOption,
    email: Annotated[str, typer.Argument(help="their e-mail, which they sign in with")],
    name: Annotated[str, typer.Option(help="their name as the audit log shows it")],
    role: Annotated[str, typer.Option(help=ROLES_HELP)],
    operator: Annotated[str | None, typer.Option(help="their operator (all but admins)")] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Add a person who signs in to the web app with an e-mail and a password."""
    from ingest.services import accounts
    from ingest.services.common import ConflictError, RefusedError
    from protocol.clock import SystemClock

    password, made = _password(password_stdin)
    try:
        with api_store(config) as store:
            added = accounts.add(
                store,
                CommandLine(),
                email=email,
                name=name,
                role=role,
                operator=operator,
                password=password,
                now=SystemClock().now(),
            )
    except (RefusedError, ConflictError) as exc:
        fail(exc)
    typer.echo(f"account {added.id} for {added.name} <{added.email}> ({added.role})")
    if made:
        typer.echo(f"password (give it to them, it is not stored): {password}")


@users_app.command("list")
def users_list(config: ConfigOption) -> None:
    """Every account: id, e-mail, name, role, operator, last sign-in, enabled or not."""
    from ingest.services import accounts

    with api_store(config) as store:
        found = accounts.listed(store)
    for a in found:
        state = f"disabled {stamp(a.disabled_at)}" if a.disabled_at else "enabled"
        last = stamp(a.last_sign_in_at) if a.last_sign_in_at else "never"
        typer.echo(
            f"{a.id}\t{a.email}\t{a.name}\t{a.role}\t{a.operator or '-'}\t"
            f"last sign-in {last}\t{state}"
        )


@users_app.command("disable")
def users_disable(
    config: ConfigOption, email: Annotated[str, typer.Argument(help="the account's e-mail")]
) -> None:
    """Disable an account: it cannot sign in, and its open sessions end at once."""
    from ingest.services import accounts
    from ingest.services.common import NotFoundError, RefusedError
    from protocol.clock import SystemClock

    try:
        with api_store(config) as store:
            done = accounts.disable(store, CommandLine(), email, SystemClock().now())
    except (NotFoundError, RefusedError) as exc:
        fail(exc)
    typer.echo(f"account of {done.email} disabled; its sessions have ended")


@users_app.command("reset")
def users_reset(
    config: ConfigOption,
    email: Annotated[str, typer.Argument(help="the account's e-mail")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Give an account a new password (and enable it again); its open sessions end."""
    from ingest.services import accounts
    from ingest.services.common import NotFoundError, RefusedError
    from protocol.clock import SystemClock

    password, made = _password(password_stdin)
    try:
        with api_store(config) as store:
            done = accounts.reset(store, CommandLine(), email, password, SystemClock().now())
    except (NotFoundError, RefusedError) as exc:
        fail(exc)
    typer.echo(f"new password for {done.email}; its sessions have ended")
    if made:
        typer.echo(f"password (give it to them, it is not stored): {password}")
