"""API mode against a real neutron 29.0.0 API server (tests/testkit/neutron_server.py).

Ports are created through the API (so ML2's openvswitch driver binds them), some
bindings are then drifted by SQL as the incident did, and:

* the API audit's findings equal the database audit's, but for what the API cannot
  see (named in its assumptions);
* after ``repair --os-cloud --apply`` every binding equals what the mechanism driver
  computes for its host's agent (the details of a port freshly bound there).
"""

from __future__ import annotations

import http.server
import io
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from testkit.neutron_server import NeutronServer, ovs_agent_configurations, running_server

from vifdoctor.cmd.main import main
from vifdoctor.model import Change
from vifdoctor.options import SourceOptions
from vifdoctor.repair import api_rebind
from vifdoctor.repair.backup import read_backup
from vifdoctor.rules.plug import RuleContext
from vifdoctor.settings import resolve
from vifdoctor.sources.neutron_api import NeutronApi, connect_cloud, stored_details

HYBRID, NATIVE, DEAD = "compute1", "compute2", "compute3"
# What neutron 29.0.0's OpenvswitchMechanismDriver writes (its mech_openvswitch.py).
HYBRID_DETAILS = {
    "bridge_name": "br-int",
    "connectivity": "l2",
    "datapath_type": "system",
    "ovs_hybrid_plug": True,
    "port_filter": True,
}
NATIVE_DETAILS = {
    "bridge_name": "br-int",
    "connectivity": "l2",
    "datapath_type": "system",
    "ovs_create_tap": True,
    "ovs_hybrid_plug": False,
    "port_filter": True,
}
SERVICE = {"X-Roles": "admin,service"}


@pytest.fixture
def neutron_api(
    neutron29_mariadb_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[NeutronServer]:
    """A real API server on a fresh migrated database; openstacksdk sees only its cloud."""
    with running_server(neutron29_mariadb_url, tmp_path) as server:
        for key in [k for k in os.environ if k.startswith("OS_")] + ["VIFDOCTOR_NEUTRON_DB"]:
            monkeypatch.delenv(key, raising=False)
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(server.clouds_yaml))
        server.add_agent(HYBRID, ovs_agent_configurations(True))
        server.add_agent(NATIVE, ovs_agent_configurations(False))
        yield server


def call(
    server: NeutronServer,
    method: str,
    path: str,
    body: dict | None = None,
    headers: dict | None = None,
) -> Any:
    """A raw API call (with X-Roles where the policy wants the service role)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        f"{server.url}/v2.0{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read()
    return json.loads(text) if text else None


def make_network(server: NeutronServer) -> str:
    net = call(server, "POST", "/networks", {"network": {"name": "vd"}})["network"]
    call(
        server,
        "POST",
        "/subnets",
        {"subnet": {"network_id": net["id"], "cidr": "10.9.0.0/24", "ip_version": 4}},
    )
    return net["id"]


def make_port(
    server: NeutronServer, net: str, host: str | None, owner: str = "compute:nova"
) -> dict:
    body: dict = {"network_id": net, "device_owner": owner, "device_id": str(uuid.uuid4())}
    if host is not None:
        body["binding:host_id"] = host
    return call(server, "POST", "/ports", {"port": body})["port"]


def drift(server: NeutronServer, port_id: str, details: str) -> None:
    server.sql(
        "UPDATE ml2_port_bindings SET vif_details = :d WHERE port_id = :p AND status = 'ACTIVE'",
        d=details,
        p=port_id,
    )


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def audit(*source: str) -> tuple[int, dict]:
    code, out, err = run_cli("audit", *source, "-f", "json")
    assert code in (0, 1, 2), err
    return code, json.loads(out)


def build_incident(server: NeutronServer) -> dict[str, str]:
    """Ports bound by ML2 through the API, then drifted by SQL as the incident did."""
    net = make_network(server)
    ports = {
        "empty": make_port(server, net, HYBRID)["id"],  # Havana-era '' -> VD101
        "filter_only": make_port(server, net, HYBRID)["id"],  # Icehouse migration -> VD101
        "good_hybrid": make_port(server, net, HYBRID)["id"],
        "native_hybrid": make_port(server, net, NATIVE)["id"],  # firewall change -> VD102
        "good_native": make_port(server, net, NATIVE)["id"],
        "unbound": make_port(server, net, None)["id"],  # VD106
        "dhcp": make_port(server, net, HYBRID, "network:dhcp")["id"],
        "migrating": make_port(server, net, HYBRID)["id"],  # INACTIVE leftover -> VD109
        "malformed": make_port(server, net, HYBRID)["id"],  # VD104 (DB only), as {}: VD101
    }
    drift(server, ports["empty"], "")
    drift(server, ports["filter_only"], '{"port_filter": true}')
    drift(server, ports["native_hybrid"], json.dumps(HYBRID_DETAILS))
    drift(server, ports["malformed"], '{"port_filter": true, "ovs_hybrid_plug": tru')
    call(
        server,
        "POST",
        f"/ports/{ports['migrating']}/bindings",
        {"binding": {"host": NATIVE}},
        SERVICE,
    )
    return ports


def comparable(finding: dict, *, api: bool) -> dict:
    """A finding without what the API cannot show (the driver of an INACTIVE binding)."""
    out = dict(finding)
    if out["code"] == "VD109":
        out["driver"] = ""
    return out


@pytest.mark.mariadb
def test_api_audit_finds_what_the_database_audit_finds(neutron_api: NeutronServer) -> None:
    ports = build_incident(neutron_api)
    neutron_api.refresh_agents()
    db_code, db_doc = audit("--neutron-db", neutron_api.db_url)
    api_code, api_doc = audit("--os-cloud", "vdtest")

    assert api_doc["schema"]["source"] == "neutron-api"
    assert db_code == api_code == 2
    db = [
        comparable(f, api=False) for f in db_doc["findings"] if f["port_id"] != ports["malformed"]
    ]
    api = [
        comparable(f, api=True) for f in api_doc["findings"] if f["port_id"] != ports["malformed"]
    ]
    assert api == db
    codes = {(f["code"], f["port_id"]) for f in db}
    assert ("VD101", ports["empty"]) in codes and ("VD101", ports["filter_only"]) in codes
    assert ("VD102", ports["native_hybrid"]) in codes
    assert ("VD106", ports["unbound"]) in codes and ("VD109", ports["migrating"]) in codes
    assert not any(f["port_id"] in (ports["good_hybrid"], ports["good_native"]) for f in db)

    # What the API cannot see is said, not guessed: the malformed text is parsed away, and
    # both paths judge the {} Neutron shows (and hands Nova) for it.
    def malformed(doc: dict) -> list[str]:
        return sorted(f["code"] for f in doc["findings"] if f["port_id"] == ports["malformed"])

    assert malformed(db_doc) == ["VD101", "VD103", "VD104"]
    assert malformed(api_doc) == ["VD101", "VD103"]
    assert "VD104" not in {f["code"] for f in api_doc["findings"]}
    assert any("VD104 and VD111 cannot be seen" in a for a in api_doc["assumptions"])
    assert api_doc["summary"]["bindings"] == db_doc["summary"]["bindings"]

    # Selectors are applied server-side and give the same subset.
    _, db_host = audit("--neutron-db", neutron_api.db_url, "--host", NATIVE)
    _, api_host = audit("--os-cloud", "vdtest", "--host", NATIVE)
    assert [comparable(f, api=True) for f in api_host["findings"]] == [
        comparable(f, api=False) for f in db_host["findings"]
    ]


def _reference_details(server: NeutronServer, net: str, host: str) -> dict:
    """What the mechanism driver computes for this host's agent: a port bound there now."""
    port = make_port(server, net, host)
    details = dict(port["binding:vif_details"])
    details.pop("bound_drivers", None)
    return details


@pytest.mark.mariadb
def test_api_repair_rebinds_through_neutron(neutron_api: NeutronServer, tmp_path: Path) -> None:
    ports = build_incident(neutron_api)
    neutron_api.refresh_agents()
    before = dict(
        neutron_api.sql(
            "SELECT port_id, vif_details FROM ml2_port_bindings WHERE status = 'ACTIVE'"
        )
    )

    code, out, err = run_cli("repair", "--os-cloud", "vdtest", "-f", "json")
    assert code == 0, err
    doc = json.loads(out)
    # VD101/VD103 by default. The malformed text reaches the API as {} (what Nova gets
    # too), so API mode plans it like an empty one: a re-bind rewrites it whole.
    assert {c["port_id"] for c in doc["changes"]} == {
        ports["empty"],
        ports["filter_only"],
        ports["malformed"],
    }
    assert (
        dict(
            neutron_api.sql(
                "SELECT port_id, vif_details FROM ml2_port_bindings WHERE status = 'ACTIVE'"
            )
        )
        == before
    )  # dry run

    # noauth admin has no service role: policy refuses binding:profile. The default method
    # fails those ports with the reason and never escalates to unbinding them on its own.
    code, out, err = run_cli(
        "repair",
        "--os-cloud",
        "vdtest",
        "--apply",
        "--code",
        "VD101",
        "--backup-dir",
        str(tmp_path / "refused"),
        "-f",
        "json",
    )
    refused = {r["port_id"]: r for r in json.loads(out)["ports"]}
    assert refused and {r["result"] for r in refused.values()} == {"failed"}, refused
    assert all(
        "service role" in r["message"] and r["method"] == "profile" for r in refused.values()
    )
    assert (
        dict(
            neutron_api.sql(
                "SELECT port_id, vif_details FROM ml2_port_bindings WHERE status = 'ACTIVE'"
            )
        )
        == before
    )

    code, out, err = run_cli(
        "repair",
        "--os-cloud",
        "vdtest",
        "--apply",
        "--code",
        "VD101",
        "--code",
        "VD102",
        "--backup-dir",
        str(tmp_path / "bk"),
        "--rebind-method",
        "host",
        "-f",
        "json",
    )
    assert code == 0, (out, err)
    doc = json.loads(out)
    results = {r["port_id"]: r for r in doc["ports"]}
    assert set(results) == {
        ports["empty"],
        ports["filter_only"],
        ports["native_hybrid"],
        ports["malformed"],
    }
    assert {r["method"] for r in results.values()} == {"host"}
    assert all(r["result"] == "rebound" for r in results.values()), results

    net = call(neutron_api, "GET", f"/ports/{ports['empty']}")["port"]["network_id"]
    expected = {
        HYBRID: _reference_details(neutron_api, net, HYBRID),
        NATIVE: _reference_details(neutron_api, net, NATIVE),
    }
    assert expected == {HYBRID: HYBRID_DETAILS, NATIVE: NATIVE_DETAILS}
    for name in ("empty", "filter_only", "native_hybrid", "malformed"):
        port = call(neutron_api, "GET", f"/ports/{ports[name]}")["port"]
        stored = json.loads(
            neutron_api.sql(
                "SELECT vif_details FROM ml2_port_bindings WHERE port_id = :p AND "
                "status = 'ACTIVE'",
                p=ports[name],
            )[0][0]
        )
        assert stored == expected[port["binding:host_id"]], name
        assert port["binding:profile"] == {}
    # Untouched: the good ports, the DHCP port, the migrating port (its INACTIVE row too).
    after = dict(
        neutron_api.sql(
            "SELECT port_id, vif_details FROM ml2_port_bindings WHERE status = 'ACTIVE'"
        )
    )
    for name in ("good_hybrid", "good_native", "migrating", "dhcp"):
        assert after[ports[name]] == before[ports[name]], name

    backup = read_backup(doc["backup"])
    originals = {r["original"]["id"]: r["original"] for r in backup.rows}
    assert originals[ports["filter_only"]]["binding:vif_details"]["port_filter"] is True
    assert "bindings" in originals[ports["empty"]]

    _, api_doc = audit("--os-cloud", "vdtest")
    assert not {"VD101", "VD102"} & {f["code"] for f in api_doc["findings"]}


def _rebinder(
    server: NeutronServer, roles: dict | None, codes: frozenset[str]
) -> tuple[NeutronApi, api_rebind.Rebinder]:
    conn = connect_cloud("vdtest")
    if roles:
        conn.session.additional_headers.update(roles)
    api = NeutronApi(conn, cloud="vdtest", progress=False).open()
    settings = resolve(SourceOptions(neutron_db="x"))
    ctx: RuleContext = settings.context
    return api, api_rebind.Rebinder(api, api.agents(75), ctx, codes, "auto")


def _change(port: dict) -> Change:
    return Change(
        port_id=port["id"],
        host=port["binding:host_id"],
        status="ACTIVE",
        stored="",
        new="{}",
        codes=("VD101",),
        device_owner=port["device_owner"],
        device_id=port["device_id"],
        vif_type=port["binding:vif_type"],
        plug_before="direct",
        plug_after="hybrid",
    )


@pytest.mark.mariadb
def test_profile_rebind_restores_profile_and_skips_changed_ports(
    neutron_api: NeutronServer,
) -> None:
    net = make_network(neutron_api)
    a = make_port(neutron_api, net, HYBRID)
    b = make_port(neutron_api, net, HYBRID)
    call(
        neutron_api, "PUT", f"/ports/{a['id']}", {"port": {"binding:profile": {"keep": 1}}}, SERVICE
    )
    for p in (a, b):
        drift(neutron_api, p["id"], "")
    neutron_api.refresh_agents()
    api, rebinder = _rebinder(neutron_api, SERVICE, frozenset({"VD101"}))
    seen = {p["id"]: p for p in api.ports()}
    # b changes underneath after the audit read it: its revision moves.
    call(neutron_api, "PUT", f"/ports/{b['id']}", {"port": {"name": "renamed"}})

    t0 = time.monotonic()
    res_a = rebinder.rebind(_change(seen[a["id"]]), seen[a["id"]])
    elapsed = time.monotonic() - t0
    res_b = rebinder.rebind(_change(seen[b["id"]]), seen[b["id"]])

    assert res_a.method == "profile" and res_a.result == "rebound", res_a
    assert res_a.details_after == HYBRID_DETAILS
    assert res_a.status_before == "DOWN"  # no real agent ever reported it up
    assert res_a.revision_after > res_a.revision_before
    port = call(neutron_api, "GET", f"/ports/{a['id']}")["port"]
    assert port["binding:profile"] == {"keep": 1}  # our key removed, theirs kept
    assert port["binding:host_id"] == HYBRID
    assert res_b.result == "skipped" and "changed underneath" in res_b.message
    assert neutron_api.sql(
        "SELECT vif_details FROM ml2_port_bindings WHERE port_id = :p", p=b["id"]
    ) == [("",)]
    assert elapsed < 10


@pytest.mark.mariadb
def test_rebind_skips_a_host_without_live_agent(neutron_api: NeutronServer) -> None:
    net = make_network(neutron_api)
    port = make_port(neutron_api, net, HYBRID)
    drift(neutron_api, port["id"], "")
    neutron_api.sql("UPDATE agents SET admin_state_up = 0 WHERE host = :h", h=HYBRID)
    api, rebinder = _rebinder(neutron_api, SERVICE, frozenset({"VD101"}))
    seen = next(p for p in api.ports() if p["id"] == port["id"])
    res = rebinder.rebind(_change(seen), seen)
    assert res.result == "skipped" and "binding_failed" in res.message
    assert neutron_api.sql(
        "SELECT vif_details FROM ml2_port_bindings WHERE port_id = :p", p=port["id"]
    ) == [("",)]


class _NotYet:
    """What a neutron-server worker answers while its policy rules still load (docs/ovn.md)."""

    status_code = 404

    def json(self) -> dict:
        found = "The resource could not be found."
        return {"NeutronError": {"type": "HTTPNotFound", "message": found}}


def _restores_fail(rebinder: api_rebind.Rebinder, times: int) -> list[dict]:
    """The real server's PUTs, but the first ``times`` that put a host back answer 404."""
    real_put = rebinder.conn.network.put
    refused: list[dict] = []

    def put(url: str, **kw: Any) -> Any:
        body = (kw.get("json") or {}).get("port", {})
        if body.get("binding:host_id") and len(refused) < times:
            refused.append(body)
            return _NotYet()
        return real_put(url, **kw)

    rebinder.conn.network.put = put  # type: ignore[method-assign]
    return refused


def _host_rebind(neutron_api: NeutronServer, refusals: int) -> tuple[dict, Any, list[dict]]:
    """A drifted port re-bound by --rebind-method host, its first ``refusals`` put-backs
    answered 404: the port, the result and the refused bodies."""
    net = make_network(neutron_api)
    port = make_port(neutron_api, net, HYBRID)
    drift(neutron_api, port["id"], "")
    neutron_api.refresh_agents()
    api, rebinder = _rebinder(neutron_api, SERVICE, frozenset({"VD101"}))
    rebinder.method = "host"
    refused = _restores_fail(rebinder, refusals)
    seen = next(p for p in api.ports() if p["id"] == port["id"])
    return port, rebinder.rebind(_change(seen), seen), refused


@pytest.mark.mariadb
def test_host_rebind_retries_a_restore_the_server_is_not_ready_for(
    neutron_api: NeutronServer,
) -> None:
    port, res, refused = _host_rebind(neutron_api, 2)
    assert len(refused) == 2  # the restore was refused twice, then went through
    assert res.result == "rebound", res
    assert call(neutron_api, "GET", f"/ports/{port['id']}")["port"]["binding:host_id"] == HYBRID
    assert res.details_after == HYBRID_DETAILS


@pytest.mark.mariadb
def test_host_rebind_left_half_way_says_how_and_its_command_ends_it(
    neutron_api: NeutronServer, tmp_path: Path
) -> None:
    port, res, refused = _host_rebind(neutron_api, 1000)
    assert len(refused) == api_rebind.RESTORE_TRIES + 1  # the first try, then the retries
    assert res.result == "failed" and "left half-way" in res.message, res
    assert call(neutron_api, "GET", f"/ports/{port['id']}")["port"]["binding:host_id"] == ""
    shown = res.message.split("put it back with: ", 1)[1]
    assert shown == f"openstack --os-cloud vdtest port set --host {HYBRID} {port['id']}"
    # The printed command, pasted into a shell: the real openstack client puts it back.
    openstack = Path(sys.executable).with_name("openstack")
    env = {k: v for k, v in neutron_api.env().items() if k not in ("PYTHONPATH",)}
    done = subprocess.run(
        ["sh", "-c", shown],
        env={**env, "PATH": f"{openstack.parent}:{env.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    after = call(neutron_api, "GET", f"/ports/{port['id']}")["port"]
    assert after["binding:host_id"] == HYBRID
    assert stored_details(after["binding:vif_details"]) == HYBRID_DETAILS  # as stored


@pytest.mark.mariadb
def test_bindings_method_visits_another_host_and_comes_back(neutron_api: NeutronServer) -> None:
    net = make_network(neutron_api)
    port = make_port(neutron_api, net, HYBRID)
    drift(neutron_api, port["id"], '{"port_filter": true}')
    neutron_api.refresh_agents()
    api, rebinder = _rebinder(neutron_api, SERVICE, frozenset({"VD101"}))
    rebinder.method, rebinder.via_host = "bindings", NATIVE
    seen = next(p for p in api.ports() if p["id"] == port["id"])
    res = rebinder.rebind(_change(seen), seen)
    assert res.result == "rebound", res
    rows = neutron_api.sql(
        "SELECT host, status, vif_details FROM ml2_port_bindings WHERE port_id = :p", p=port["id"]
    )
    assert [(h, s) for h, s, _ in rows] == [(HYBRID, "ACTIVE")]
    assert json.loads(rows[0][2]) == HYBRID_DETAILS


class _Refuse(http.server.BaseHTTPRequestHandler):
    """An endpoint that refuses every request, as keystone would a bad token."""

    status = 401

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.rstrip("/") in ("", "/v2.0"):  # version discovery answers, as Neutron's
            host = f"http://127.0.0.1:{self.server.server_port}"
            body = json.dumps(
                {
                    "versions": [
                        {
                            "id": "v2.0",
                            "status": "CURRENT",
                            "links": [{"href": f"{host}/v2.0/", "rel": "self"}],
                        }
                    ]
                }
            ).encode()
            self.send_response(200)
        else:
            body = b'{"error": {"message": "The request you have made requires authentication."}}'
            self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("status", [401, 403])
def test_refusing_endpoint_is_one_line_exit_3(
    status: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = type("H", (_Refuse,), {"status": status})
    httpd = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_port}"
    (tmp_path / "clouds.yaml").write_text(
        f"clouds:\n  refuse:\n    auth_type: none\n    auth:\n      endpoint: {url}\n"
        f"    network_endpoint_override: {url}/v2.0/\n"
    )
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "clouds.yaml"))
    try:
        code, out, err = run_cli("audit", "--os-cloud", "refuse")
    finally:
        httpd.shutdown()
    assert code == 3 and out == ""
    assert len(err.strip().splitlines()) == 1 and str(status) in err, err
    assert "Traceback" not in err


def test_bad_cloud_unreachable_and_two_sources_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "clouds.yaml").write_text(
        "clouds:\n  down:\n    auth_type: password\n    auth:\n"
        "      auth_url: http://127.0.0.1:9/v3\n      username: admin\n"
        "      password: s3cret-pw\n      project_name: admin\n"
        "      user_domain_name: Default\n      project_domain_name: Default\n"
    )
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "clouds.yaml"))
    for argv in (
        ["--os-cloud", "nosuchcloud"],
        ["--os-cloud", "down"],
        ["--os-cloud", "down", "--neutron-db", "sqlite:///x.db"],
    ):
        code, out, err = run_cli("audit", *argv)
        assert code == 3, (argv, err)
        assert len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err and "s3cret-pw" not in err
