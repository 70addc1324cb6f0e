"""The registry's REST API as Confluent documents it, against the real server process."""

import json
import subprocess

import httpx
import pytest

from k2tui.model.schema import trade_v2_schema_text
from tests.integration.registry_process import RegistryProcess

CT = "application/vnd.schemaregistry.v1+json"


def record(*extra_fields: dict) -> str:
    fields = [{"name": "id", "type": "long"}, *extra_fields]
    return json.dumps({"type": "record", "name": "Probe", "namespace": "k2.test", "fields": fields})


@pytest.fixture
def http(registry) -> httpx.Client:
    with httpx.Client(base_url=registry.url, headers={"Content-Type": CT}) as client:
        yield client


def register(http: httpx.Client, subject: str, schema: str) -> httpx.Response:
    return http.post(f"/subjects/{subject}/versions", json={"schema": schema})


def error_of(response: httpx.Response) -> tuple[int, int]:
    return response.status_code, response.json()["error_code"]


def test_register_is_idempotent_and_ids_are_global(http: httpx.Client) -> None:
    first = register(http, "market.crypto.trades.binance-value", trade_v2_schema_text())
    assert first.status_code == 200
    assert first.headers["content-type"] == CT
    again = register(http, "market.crypto.trades.binance-value", trade_v2_schema_text())
    other = register(http, "market.crypto.trades.kraken-value", trade_v2_schema_text())
    assert first.json()["id"] == again.json()["id"] == other.json()["id"]
    assert http.get("/subjects/market.crypto.trades.binance-value/versions").json() == [1]
    assert http.get("/subjects").json() == [
        "market.crypto.trades.binance-value",
        "market.crypto.trades.kraken-value",
    ]


def test_versions_latest_schema_and_lookup(http: httpx.Client) -> None:
    id1 = register(http, "s", record()).json()["id"]
    id2 = register(http, "s", record({"name": "note", "type": "string", "default": ""})).json()["id"]
    assert id1 != id2
    latest = http.get("/subjects/s/versions/latest").json()
    assert latest == {"subject": "s", "version": 2, "id": id2, "schema": latest["schema"]}
    assert http.get("/subjects/s/versions/-1").json()["version"] == 2
    assert json.loads(http.get("/subjects/s/versions/1/schema").text) == json.loads(record())
    assert http.get(f"/schemas/ids/{id1}").json() == {"schema": record()}
    assert json.loads(http.get(f"/schemas/ids/{id1}/schema").text) == json.loads(record())
    assert http.get(f"/schemas/ids/{id1}/subjects").json() == ["s"]
    assert http.get(f"/schemas/ids/{id2}/versions").json() == [{"subject": "s", "version": 2}]
    pretty = json.dumps(json.loads(record()), indent=4)  # whitespace does not change identity
    assert http.post("/subjects/s", json={"schema": pretty}).json()["version"] == 1
    assert http.get("/schemas/types").json() == ["AVRO"]
    assert http.get("/subjects/s/versions/1/referencedby").json() == []


def test_confluent_error_codes(http: httpx.Client) -> None:
    register(http, "s", record())
    assert error_of(http.get("/subjects/nope/versions")) == (404, 40401)
    assert error_of(http.get("/subjects/s/versions/7")) == (404, 40402)
    assert error_of(http.get("/schemas/ids/999")) == (404, 40403)
    assert error_of(http.post("/subjects/s", json={"schema": record({"name": "x", "type": "int"})})) == (
        404,
        40403,
    )
    assert error_of(register(http, "s", '{"type": "recordd"}')) == (422, 42201)
    assert error_of(register(http, "s", "not json")) == (422, 42201)
    assert error_of(http.post("/subjects/s/versions", json={"schemaType": "PROTOBUF", "schema": "x"})) == (
        422,
        42201,
    )
    assert error_of(http.get("/subjects/s/versions/zero")) == (422, 42202)
    assert error_of(http.get("/subjects/s/versions/0")) == (422, 42202)
    assert error_of(http.put("/config", json={"compatibility": "SOMETIMES"})) == (422, 42203)
    incompatible = register(http, "s", record({"name": "note", "type": "string"}))
    assert error_of(incompatible) == (409, 409)
    assert "READER_FIELD_MISSING_DEFAULT_VALUE" in incompatible.json()["message"]
    assert error_of(http.get("/no/such/route")) == (404, 404)
    bad_json = http.post("/subjects/s/versions", content=b"{", headers={"Content-Type": CT})
    assert error_of(bad_json) == (400, 400)


def test_compatibility_endpoint_and_config(http: httpx.Client) -> None:
    register(http, "s", record())
    breaking = {"schema": record({"name": "note", "type": "string"})}
    result = http.post("/compatibility/subjects/s/versions/latest?verbose=true", json=breaking).json()
    assert result["is_compatible"] is False
    assert "note" in result["messages"][0]
    assert http.post("/compatibility/subjects/s/versions", json=breaking).json() == {"is_compatible": False}
    assert http.get("/config").json() == {"compatibilityLevel": "BACKWARD"}
    assert error_of(http.get("/config/s")) == (404, 40408)
    assert http.get("/config/s?defaultToGlobal=true").json() == {"compatibilityLevel": "BACKWARD"}
    assert http.put("/config/s", json={"compatibility": "none"}).json() == {"compatibility": "NONE"}
    assert http.post("/compatibility/subjects/s/versions/1", json=breaking).json()["is_compatible"] is True
    assert register(http, "s", breaking["schema"]).status_code == 200
    assert http.delete("/config/s").json() == {"compatibilityLevel": "NONE"}
    assert http.put("/config", json={"compatibility": "FULL_TRANSITIVE"}).json() == {
        "compatibility": "FULL_TRANSITIVE"
    }
    assert http.get("/config").json() == {"compatibilityLevel": "FULL_TRANSITIVE"}


def test_soft_then_permanent_delete(http: httpx.Client) -> None:
    register(http, "s", record())
    register(http, "s", record({"name": "n", "type": "int", "default": 0}))
    assert http.delete("/subjects/s/versions/2?permanent=true").json()["error_code"] == 40407
    assert http.delete("/subjects/s/versions/latest").json() == 2
    assert http.get("/subjects/s/versions").json() == [1]
    assert http.get("/subjects/s/versions?deleted=true").json() == [1, 2]
    assert http.delete("/subjects/s/versions/2").json()["error_code"] == 40406
    assert http.delete("/subjects/s/versions/2?permanent=true").json() == 2
    assert http.delete("/subjects/s?permanent=true").json()["error_code"] == 40405
    assert http.delete("/subjects/s").json() == [1]
    assert http.get("/subjects").json() == []
    assert http.get("/subjects?deleted=true").json() == ["s"]
    assert http.delete("/subjects/s").json()["error_code"] == 40404
    assert http.delete("/subjects/s?permanent=True").json() == [1]
    assert error_of(http.get("/subjects/s/versions?deleted=true")) == (404, 40401)


def test_request_body_over_the_limit_is_refused(http: httpx.Client) -> None:
    huge = {"schema": json.dumps({"type": "record", "name": "Big", "doc": "x" * 2_000_000, "fields": []})}
    response = http.post("/subjects/big/versions", json=huge)
    assert error_of(response) == (413, 413)
    assert http.get("/subjects").json() == []


def test_schemas_survive_a_restart(registry) -> None:
    with httpx.Client(base_url=registry.url) as http:
        schema_id = register(http, "durable", trade_v2_schema_text()).json()["id"]
        http.put("/config/durable", json={"compatibility": "FULL"})
    registry.stop()
    registry.start()
    with httpx.Client(base_url=registry.url) as http:
        assert http.get("/subjects/durable/versions/latest").json()["id"] == schema_id
        assert http.get(f"/schemas/ids/{schema_id}").status_code == 200
        assert http.get("/config/durable").json() == {"compatibilityLevel": "FULL"}
        assert register(http, "durable", trade_v2_schema_text()).json()["id"] == schema_id


def test_port_in_use_is_one_clear_sentence(registry, tmp_path) -> None:
    result = subprocess.run(
        RegistryProcess(registry.port, tmp_path / "second").command(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: port {registry.port} on 127.0.0.1 is already in use by another process; "
        "stop it or choose another port with the setting registry.port (K2_REGISTRY_PORT or --port)"
    )


def test_same_avro_schema_in_another_spelling_is_the_same_id(http: httpx.Client) -> None:
    document = json.loads(trade_v2_schema_text())
    first = register(http, "v", trade_v2_schema_text()).json()["id"]
    reordered = json.dumps(dict(reversed(list(document.items()))))
    assert register(http, "v", reordered).json()["id"] == first
    assert (
        register(http, "p", '"string"').json()["id"] == register(http, "p", '{"type": "string"}').json()["id"]
    )
    assert http.get("/subjects/v/versions").json() == [1]
    assert http.get("/subjects/p/versions").json() == [1]


def test_empty_or_misnamed_config_never_switches_compatibility_off(http: httpx.Client) -> None:
    assert error_of(http.put("/config", json={})) == (422, 42203)
    assert error_of(http.put("/config/x", json={"compatibilityLevel": "FULL"})) == (422, 42203)
    assert http.get("/config").json() == {"compatibilityLevel": "BACKWARD"}


def test_bad_input_gets_a_confluent_error_not_a_500(http: httpx.Client) -> None:
    register(http, "s", record())
    null_aliases = json.dumps(
        {
            "type": "record",
            "name": "Probe",
            "namespace": "k2.test",
            "aliases": None,
            "fields": [{"name": "id", "type": "long"}],
        }
    )
    assert error_of(register(http, "s", null_aliases)) == (422, 42201)
    assert error_of(http.get("/schemas/ids/99999999999999999999")) == (404, 40403)
    nested = http.post("/subjects/s/versions", content=b"[" * 200_000 + b"]" * 200_000)
    assert nested.status_code in (400, 413)
    assert error_of(http.get("/subjects/s/versions/1_0")) == (422, 42202)


def test_subjects_may_contain_a_slash(registry) -> None:
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

    client = SchemaRegistryClient({"url": registry.url})
    schema_id = client.register_schema("team/trades-value", Schema(record(), "AVRO"))
    assert client.get_subjects() == ["team/trades-value"]
    assert client.get_latest_version("team/trades-value").schema_id == schema_id
    assert client.get_versions("team/trades-value") == [1]
