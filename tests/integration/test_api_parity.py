"""API mode and the database path give the same findings on one cloud, Nova included.

Issue 14: audited through the real neutron 29.0.0 and nova 34.0.0 APIs, a cloud must
give the findings of ``audit --neutron-db --nova-db``, less the codes the APIs cannot
show (``UNSEEN_CODES``: VD104, VD111; ``CACHE_CODES``: Nova's cache). Ports are bound by
ML2 through the API on three kinds of OVS host, then drifted by SQL the ways
benchmarks/generate.py drifts them, the text that does not parse included (the 20k
benchmark's extra API findings came from those rows: Neutron shows them as ``{}``).
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from test_api_mode import (
    HYBRID,
    HYBRID_DETAILS,
    NATIVE,
    NATIVE_DETAILS,
    SERVICE,
    audit,
    call,
    drift,
    make_network,
)
from test_nova_api import clouds, uid, vm_port  # noqa: F401 - the fixture
from testkit.neutron_server import NeutronServer
from testkit.nova_server import NovaServer

from vifdoctor.demo.nova import InstanceSpec
from vifdoctor.sources.neutron_api import UNSEEN_CODES
from vifdoctor.sources.nova_api import CACHE_CODES

pytestmark = [pytest.mark.mariadb, pytest.mark.nova_real]

LEGACY, DEAD = "compute4", "compute3"
#: How benchmarks/generate.py drifts a binding (DRIFT_TEXT, MALFORMED), plus the other
#: host's details (a firewall change).
DRIFTS = {
    "empty": "",
    "filter_only": '{"port_filter": true}',
    "hybrid_null": json.dumps({**HYBRID_DETAILS, "ovs_hybrid_plug": None}),
    "cut_short": '{"port_filter": true, "ovs_hybrid_plug": tru',
    "python_repr": "{'port_filter': True, 'ovs_hybrid_plug': True}",
}


def keyed(doc: dict) -> set[tuple[str, str, str]]:
    return {
        (f["code"], f["port_id"], f["host"])
        for f in doc["findings"]
        if f["code"] not in UNSEEN_CODES | CACHE_CODES
    }


def test_api_and_database_paths_find_the_same(
    clouds: tuple[NeutronServer, NovaServer],  # noqa: F811
) -> None:
    neutron, nova = clouds
    neutron.add_agent(LEGACY, {"bridge_mappings": {}, "tunnel_types": ["vxlan"]})  # pre-Newton
    neutron.add_agent(DEAD, {"ovs_hybrid_plug": True}, alive=False)
    net = make_network(neutron)
    servers: list[InstanceSpec] = []
    ports: dict[tuple[str, str], str] = {}
    n = 100
    for host, other in ((HYBRID, NATIVE_DETAILS), (NATIVE, HYBRID_DETAILS), (LEGACY, None)):
        for kind in ("as_bound", *DRIFTS, "other_host"):
            if kind == "other_host" and other is None:
                continue
            n += 1
            ports[host, kind] = vm_port(neutron, net, host, uid(n))
            servers.append(InstanceSpec(uuid=uid(n), host=host, display_name=f"{host}-{kind}"))
            if kind in DRIFTS:
                drift(neutron, ports[host, kind], DRIFTS[kind])
            elif kind == "other_host":
                drift(neutron, ports[host, kind], json.dumps(other))
    ports[DEAD, "failed"] = vm_port(neutron, net, DEAD, uid(200))  # binding_failed: VD105
    ports[HYBRID, "away"] = vm_port(neutron, net, HYBRID, uid(201))  # Nova: on NATIVE, VD202
    ports[HYBRID, "absent"] = vm_port(neutron, net, HYBRID, uid(202))  # not in Nova: VD204
    ports[HYBRID, "moved"] = vm_port(neutron, net, HYBRID, uid(203))  # failed live migration
    servers += [
        InstanceSpec(uuid=uid(200), host=DEAD, vm_state="error", power_state=0),
        InstanceSpec(uuid=uid(201), host=NATIVE),
        InstanceSpec(uuid=uid(203), host=HYBRID),
    ]
    nova.add_servers(servers)
    call(
        neutron,
        "POST",
        f"/ports/{ports[HYBRID, 'moved']}/bindings",
        {"binding": {"host": NATIVE}},
        SERVICE,
    )
    with nova.cell_engine.begin() as c:  # the move nova logged; the INACTIVE row it left
        c.execute(
            sa.text(
                "INSERT INTO migrations (created_at, source_compute, dest_compute, status, "
                "instance_uuid, migration_type, hidden, deleted, uuid) VALUES (UTC_TIMESTAMP(), "
                ":s, :d, 'error', :i, 'live-migration', 0, 0, :u)"
            ),
            {"s": HYBRID, "d": NATIVE, "i": uid(203), "u": uid(299)},
        )
    neutron.refresh_agents()

    db_code, db_doc = audit("--neutron-db", neutron.db_url, "--nova-db", nova.cell_url)
    api_code, api_doc = audit("--os-cloud", "vdtest")

    assert api_doc["nova"][0]["dialect"] == "compute-api"
    assert keyed(api_doc) == keyed(db_doc)
    assert api_code == db_code == 2
    assert api_doc["agents"] == db_doc["agents"]
    assert api_doc["summary"]["judged"] == db_doc["summary"]["judged"]
    # The text that does not parse: VD104 where the stored text is read, and on both paths
    # what Nova gets of it ({}): plugged direct on the hosts that need hybrid.
    for kind in ("cut_short", "python_repr"):
        for doc in (db_doc, api_doc):
            codes = {
                (f["code"], f["host"])
                for f in doc["findings"]
                if f["port_id"] in (ports[HYBRID, kind], ports[NATIVE, kind], ports[LEGACY, kind])
            }
            assert {("VD101", HYBRID), ("VD101", LEGACY)} <= codes
            assert ("VD101", NATIVE) not in codes
        assert ("VD104", ports[HYBRID, kind]) in {
            (f["code"], f["port_id"]) for f in db_doc["findings"]
        }
    # Every kind was there to be compared, the INACTIVE row of the failed move included.
    assert {c for c, _, _ in keyed(db_doc)} >= {
        "VD101",
        "VD102",
        "VD103",
        "VD105",
        "VD202",
        "VD204",
    }
    assert any(p == ports[HYBRID, "moved"] and h == NATIVE for _, p, h in keyed(db_doc))
