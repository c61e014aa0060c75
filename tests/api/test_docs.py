"""/docs works without internet: Swagger UI's files come from the API itself."""

from __future__ import annotations

import json
import re

from ingest.store import Store
from tests.support.live import running_api


def test_docs_load_nothing_from_another_host(store: Store) -> None:
    with running_api(store) as api:
        page = api.get("/docs", headers={"Authorization": ""})
        assert page.status_code == 200
        html = page.text
        references = re.findall(r"""(?:src|href|url)\s*[=:]\s*["']([^"']+)["']""", html)
        assert len(references) >= 4, references
        for ref in references:
            assert not re.match(r"^(?:[a-z]+:)?//", ref, re.IGNORECASE), ref
            assert ref.startswith("/"), ref
            served = api.get(ref)
            assert served.status_code == 200, ref
        assert "http://" not in html and "https://" not in html
        assert '"validatorUrl": null' in html
        script = api.get("/static/vendor/swagger-ui/swagger-ui-bundle.js")
        assert "javascript" in script.headers["content-type"]
        assert len(script.content) > 1_000_000 and b"SwaggerUIBundle" in script.content
        assert (
            "text/css"
            in api.get("/static/vendor/swagger-ui/swagger-ui.css").headers["content-type"]
        )
        package = json.loads(api.get("/static/vendor/swagger-ui/package.json").text)
        assert (package["name"], package["version"]) == ("swagger-ui-dist", "5.35.0")
        licence = api.get("/static/vendor/swagger-ui/LICENSE")
        assert licence.status_code == 200 and "Apache License" in licence.text
        spec = api.get("/openapi.json").json()
        assert spec["openapi"].startswith("3.1")
        assert "/api/v1/live" in spec["paths"]
        assert "/api/v1/vehicles/{vehicle_id}/track" in spec["paths"]
        assert api.get("/redoc").status_code == 404
