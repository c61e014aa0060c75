"""Personal tokens kept in the database (SQLite, PostgreSQL): a token made for a person
works at once with that person's role and operator, its last use is kept, and a revoked
token is refused from the next request on, without restarting the API."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from api.auth import hash_token, new_token
from ingest.itinerary import Itinerary
from ingest.services import audit, tokens
from ingest.store import Store
from tests.support.actors import Admin
from tests.support.live import running_api

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
MEDICOBUS = str(Path(sys.executable).parent / "medicobus")


def test_a_stored_token_works_at_once_and_stops_when_revoked(store: Store) -> None:
    secret = new_token()
    token_id = tokens.create(
        store,
        Admin(),
        label="planning script",
        person="Camille",
        role="coordinator",
        operator="cpts-caux",
        token_sha256=hash_token(secret),
        now=NOW,
    )
    with running_api(store, token=secret) as api:
        vehicles = api.get("/api/v1/vehicles")
        assert vehicles.status_code == 200, vehicles.text
        assert [v["id"] for v in vehicles.json()] == ["caux-01"]  # their operator's only
        (listed,) = tokens.tokens(store)
        assert (listed.person, listed.label, listed.revoked_at) == (
            "Camille",
            "planning script",
            None,
        )
        assert listed.last_used_at is not None
        tokens.revoke(store, Admin(), token_id, NOW)
        refused = api.get("/api/v1/vehicles")
        assert refused.status_code == 401
        # The settings file's users are not affected.
        assert (
            api.get(
                "/api/v1/vehicles", headers={"Authorization": "Bearer admin-token-for-tests"}
            ).status_code
            == 200
        )
    actions = [(e.action, e.target) for e in audit.entries(store)]
    assert actions == [("token.revoke", f"token {token_id}"), ("token.create", f"token {token_id}")]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MEDICOBUS, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_tokens_from_the_command_line(tmp_path: Path, itinerary: Itinerary) -> None:
    url = f"sqlite:///{tmp_path}/api.sqlite"
    config = tmp_path / "api.toml"
    config.write_text(f'database_url = "{url}"\n')
    made = run(
        "tokens", "create", "-c", str(config), "--person", "Camille",
        "--role", "coordinator", "--operator", "doct-eure", "--label", "tableur",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().rsplit(" ", 1)[1]
    store = Store.open(url)
    store.load_fleet(itinerary)
    with running_api(store, token=token) as api:
        assert api.get("/api/v1/vehicles").status_code == 200
        listed = run("tokens", "list", "-c", str(config))
        assert (
            listed.returncode == 0 and "Camille\tcoordinator\tdoct-eure\ttableur" in listed.stdout
        )
        revoked = run("tokens", "revoke", "-c", str(config), "1")
        assert revoked.returncode == 0, revoked.stderr
        assert api.get("/api/v1/vehicles").status_code == 401
    store.close()
    assert "revoked" in run("tokens", "list", "-c", str(config)).stdout
    for bad, says in (
        (["--role", "pilot", "--operator", "doct-eure"], "pilot"),
        (["--role", "coordinator"], "needs an operator"),
    ):
        refused = run("tokens", "create", "-c", str(config), "--person", "X", *bad)
        assert refused.returncode == 2 and says in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    unknown = run("tokens", "revoke", "-c", str(config), "99")
    assert unknown.returncode == 2 and "no token 99" in unknown.stderr
