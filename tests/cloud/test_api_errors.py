"""#13: the OpenAPI document declares, for every operation, the error statuses and the one error body
(ErrorPublic) the API really answers with (cloud/api/errors.py) -- by construction, so a new route is covered."""

from __future__ import annotations

from fastapi.testclient import TestClient

from cloud.app import create_app
from cloud.core.config import Settings


def test_every_operation_declares_its_errors(cloud_settings: Settings) -> None:
    with TestClient(create_app(cloud_settings, run_background=False)) as client:
        doc = client.get("/api/v1/openapi.json").json()
        refused = client.get("/api/v1/registry/sites/nope")  # 401: a real error body matches the model
    assert set(refused.json()) >= {"detail"} and refused.status_code == 401
    assert doc["components"]["schemas"]["ErrorPublic"]["required"] == ["detail"]
    ref = {"$ref": "#/components/schemas/ErrorPublic"}
    operations = [(p, m, op) for p, item in doc["paths"].items() for m, op in item.items()]
    assert len(operations) > 100
    for path, method, op in operations:
        responses = op["responses"]
        assert responses["422"]["content"]["application/json"]["schema"] == ref, (method, path)
        if op.get("security"):
            assert {"401", "403"} <= set(responses), (method, path)
        if "{" in path or method in {"post", "put", "patch", "delete"}:
            assert "404" in responses, (method, path)
        if method in {"post", "put", "patch", "delete"}:
            assert {"409", "413"} <= set(responses), (method, path)
    login = doc["paths"]["/api/v1/auth/token"]["post"]["responses"]
    assert "429" in login and "401" not in doc["paths"]["/api/v1/health"]["get"]["responses"]
