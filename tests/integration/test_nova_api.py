"""Nova through its compute API in API mode, against a real nova 34.0.0 API server.

tests/testkit/nova_server.py serves nova's own ``osapi_compute`` app on the real nova 34.0.0
schema (instances written by ``write_instances``), next to tests/testkit/neutron_server.py's
real neutron. The API-mode audit must find the instance-level problems the
database path finds (VD202, VD204) and must not judge the cache it cannot see.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_api_mode import HYBRID, NATIVE, audit, call, make_network, run_cli
from testkit.neutron_server import NeutronServer, ovs_agent_configurations
from testkit.neutron_server import running_server as running_neutron
from testkit.nova_server import NovaServer
from testkit.nova_server import running_server as running_nova

from vifdoctor.demo.nova import POWER_RUNNING, POWER_SHUTDOWN, InstanceSpec
from vifdoctor.sources.neutron_api import connect_cloud
from vifdoctor.sources.nova_api import CACHE_CODES, NovaApiCells

pytestmark = [pytest.mark.mariadb, pytest.mark.nova_real]


@pytest.fixture
def clouds(
    neutron29_mariadb_url: str,
    nova34_api_mariadb_url: str,
    nova34_cell_mariadb_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[NeutronServer, NovaServer]]:
    """Real neutron + real nova; the test cloud ``vdtest`` has both endpoints."""
    (tmp_path / "neutron").mkdir()
    with (
        running_neutron(neutron29_mariadb_url, tmp_path / "neutron") as neutron,
        running_nova(
            nova34_api_mariadb_url, nova34_cell_mariadb_url, neutron.url, tmp_path / "nova"
        ) as nova,
    ):
        for key in [k for k in os.environ if k.startswith("OS_")] + [
            "VIFDOCTOR_NEUTRON_DB",
            "VIFDOCTOR_NOVA_DB",
            "VIFDOCTOR_NOVA_API_DB",
        ]:
            monkeypatch.delenv(key, raising=False)
        nova.add_clouds_entry(neutron.clouds_yaml)
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(neutron.clouds_yaml))
        neutron.add_agent(HYBRID, ovs_agent_configurations(True))
        neutron.add_agent(NATIVE, ovs_agent_configurations(False))
        yield neutron, nova


def uid(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-{n:012x}"


def vm_port(neutron: NeutronServer, net: str, host: str, device_id: str) -> str:
    body = {
        "network_id": net,
        "device_owner": "compute:nova",
        "device_id": device_id,
        "binding:host_id": host,
    }
    return call(neutron, "POST", "/ports", {"port": body})["port"]["id"]


def test_servers_listed_with_host_and_state(clouds: tuple[NeutronServer, NovaServer]) -> None:
    _, nova = clouds
    specs = [
        InstanceSpec(uuid=uid(5), host=HYBRID, display_name="five"),
        InstanceSpec(
            uuid=uid(1),
            host=NATIVE,
            node=f"{NATIVE}.example",
            display_name="one",
            vm_state="stopped",
            power_state=POWER_SHUTDOWN,
        ),
        InstanceSpec(uuid=uid(3), host=HYBRID, task_state="migrating", display_name="three"),
        InstanceSpec(uuid=uid(4), host=HYBRID, deleted=True, display_name="gone"),
        InstanceSpec(uuid=uid(2), host=None, vm_state="error", power_state=0, display_name="two"),
    ]
    nova.add_servers(specs)
    start = time.monotonic()
    cells = NovaApiCells(connect_cloud("vdtest"), cloud="vdtest", page_size=2).open()
    got = list(cells.instances())
    elapsed = time.monotonic() - start
    assert [i.uuid for i in got] == [uid(1), uid(2), uid(3), uid(5)]  # sorted, deleted absent
    assert cells.servers_read == 4  # three pages of two
    by = {i.uuid: i for i in got}
    one = by[uid(1)]
    assert (one.name, one.host, one.node, one.vm_state, one.power_state, one.task_state) == (
        "one",
        NATIVE,
        f"{NATIVE}.example",
        "stopped",
        POWER_SHUTDOWN,
        None,
    )
    assert (by[uid(3)].task_state, by[uid(3)].power_state) == ("migrating", POWER_RUNNING)
    assert (by[uid(2)].host, by[uid(2)].vm_state) == ("", "error")
    assert all(i.network_info is None and not i.deleted and i.cell == "nova-api" for i in got)
    assert cells.describe()[0]["url"].startswith(nova.url)
    print(
        f"nova API: start {nova.start_seconds:.1f} s, rss {nova.rss_mb:.0f} MB, "
        f"listing 4 servers in pages of 2: {elapsed:.2f} s"
    )


def _keyed(doc: dict, codes: set[str]) -> list[tuple[str, str, str]]:
    return sorted(
        (f["code"], f["port_id"], f["host"]) for f in doc["findings"] if f["code"] in codes
    )


def test_api_audit_with_nova_matches_database_path(
    clouds: tuple[NeutronServer, NovaServer],
) -> None:
    neutron, nova = clouds
    net = make_network(neutron)
    on_hybrid, moved, moving, deleted, absent = uid(10), uid(11), uid(12), uid(13), uid(14)
    ports = {
        "good": vm_port(neutron, net, HYBRID, on_hybrid),
        "moved": vm_port(neutron, net, HYBRID, moved),  # Nova: on NATIVE -> VD202
        "moving": vm_port(neutron, net, HYBRID, moving),  # migrating: not VD202
        "deleted": vm_port(neutron, net, HYBRID, deleted),  # soft-deleted -> VD204
        "absent": vm_port(neutron, net, NATIVE, absent),  # never in Nova -> VD204
    }
    nova.add_servers(
        [
            InstanceSpec(uuid=on_hybrid, host=HYBRID, display_name="good"),
            InstanceSpec(uuid=moved, host=NATIVE, display_name="moved"),
            InstanceSpec(uuid=moving, host=NATIVE, task_state="migrating", display_name="moving"),
            InstanceSpec(uuid=deleted, host=HYBRID, deleted=True, display_name="deleted"),
        ]
    )
    neutron.refresh_agents()

    db_code, db_doc = audit("--neutron-db", neutron.db_url, "--nova-db", nova.cell_url)
    api_code, api_doc = audit("--os-cloud", "vdtest")

    instance_codes = {"VD202", "VD204"}
    expected = sorted(
        [
            ("VD202", ports["moved"], HYBRID),
            ("VD204", ports["deleted"], HYBRID),
            ("VD204", ports["absent"], NATIVE),
        ]
    )
    assert _keyed(db_doc, instance_codes) == expected
    assert _keyed(api_doc, instance_codes) == expected
    assert db_code == api_code
    # The API cannot show the cache: those codes are not judged, and the report says so.
    assert not {f["code"] for f in api_doc["findings"]} & CACHE_CODES
    assert any("VD201, VD203 and VD205 are not judged" in a for a in api_doc["assumptions"])
    assert api_doc["nova"][0]["dialect"] == "compute-api"
    assert api_doc["summary"]["instances_read"] == 3  # the deleted server is not listed
    rows = {r["device_id"]: r for r in api_doc["instances"]}
    assert rows[moved]["codes"] == ["VD202"]
    assert rows[moved]["instance"]["host"] == NATIVE
    assert [s["action"] for s in rows[moved]["steps"]][:1] == ["rebind-host"]
    assert rows[absent]["instance"] is None

    # --no-nova-api: the Neutron-only audit of before.
    _, plain = audit("--os-cloud", "vdtest", "--no-nova-api")
    assert "nova" not in plain and not _keyed(plain, instance_codes)

    # The DB path wins when Nova's databases are given with --os-cloud.
    _, mixed = audit("--os-cloud", "vdtest", "--nova-db", nova.cell_url)
    assert mixed["nova"][0].get("dialect") != "compute-api"


def test_cloud_without_compute_is_audited_without_nova(
    clouds: tuple[NeutronServer, NovaServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    neutron, _ = clouds
    only = tmp_path / "neutron-only.yaml"
    only.write_text(
        "\n".join(
            line
            for line in neutron.clouds_yaml.read_text().splitlines()
            if "compute_endpoint_override" not in line
        )
        + "\n"
    )
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(only))
    code, out, err = run_cli("audit", "--os-cloud", "vdtest", "-f", "json")
    assert code in (0, 1, 2), err
    assert '"nova":' not in out
    assert "Nova not read" in out
