"""API mode reads INACTIVE bindings only where one can exist, through real neutron and nova.

A port of an instance Nova's os-migrations shows moved, one whose binding:profile names
``migrating_to``, one bound to a host other than Nova's: their /bindings are read. A port
of an instance at home with no migration is not, so an INACTIVE row planted there is seen
only with --all-inactive-bindings (which reads every VM port, as before issue 14).
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from test_api_mode import HYBRID, NATIVE, SERVICE, audit, call, make_network
from test_nova_api import clouds, uid, vm_port  # noqa: F401 - the fixture
from testkit.neutron_server import NeutronServer
from testkit.nova_server import NovaServer

from vifdoctor.audit import INACTIVE_SCOPE_NOTE
from vifdoctor.demo.nova import InstanceSpec

pytestmark = [pytest.mark.mariadb, pytest.mark.nova_real]


def test_inactive_bindings_read_where_a_move_shows(
    clouds: tuple[NeutronServer, NovaServer],  # noqa: F811
) -> None:
    neutron, nova = clouds
    net = make_network(neutron)
    moved, migrating, away, home = uid(21), uid(22), uid(23), uid(24)
    ports = {
        "moved": vm_port(neutron, net, HYBRID, moved),
        "migrating": vm_port(neutron, net, HYBRID, migrating),
        "away": vm_port(neutron, net, HYBRID, away),
        "home": vm_port(neutron, net, HYBRID, home),
    }
    nova.add_servers(
        [
            InstanceSpec(uuid=moved, host=HYBRID, display_name="moved"),
            InstanceSpec(uuid=migrating, host=HYBRID, display_name="migrating"),
            InstanceSpec(uuid=away, host=NATIVE, display_name="away"),
            InstanceSpec(uuid=home, host=HYBRID, display_name="home"),
        ]
    )
    with nova.cell_engine.begin() as c:  # a failed live migration of `moved`, as nova logs it
        c.execute(
            sa.text(
                "INSERT INTO migrations (created_at, source_compute, dest_compute, status, "
                "instance_uuid, migration_type, hidden, deleted, uuid) VALUES (UTC_TIMESTAMP(), "
                ":s, :d, 'error', :i, 'live-migration', 0, 0, :u)"
            ),
            {"s": HYBRID, "d": NATIVE, "i": moved, "u": uid(99)},
        )
    neutron.sql(
        "UPDATE ml2_port_bindings SET profile = :p WHERE port_id = :id",
        p=json.dumps({"migrating_to": NATIVE}),
        id=ports["migrating"],
    )
    for name in ports:  # an INACTIVE binding on every port, the one at home too
        call(
            neutron,
            "POST",
            f"/ports/{ports[name]}/bindings",
            {"binding": {"host": NATIVE}},
            SERVICE,
        )
    neutron.refresh_agents()

    def vd109(doc: dict) -> set[str]:
        """Ports with a finding on an INACTIVE row (VD109, or what the moves make of it)."""
        return {f["port_id"] for f in doc["findings"] if f["status"] == "INACTIVE"}

    _, scoped = audit("--os-cloud", "vdtest")
    assert vd109(scoped) == {ports["moved"], ports["migrating"], ports["away"]}
    assert INACTIVE_SCOPE_NOTE in scoped["assumptions"]
    _, full = audit("--os-cloud", "vdtest", "--all-inactive-bindings")
    assert vd109(full) == set(ports.values())
    assert INACTIVE_SCOPE_NOTE not in full["assumptions"]
    _, db = audit("--neutron-db", neutron.db_url)
    assert vd109(db) == set(ports.values())
