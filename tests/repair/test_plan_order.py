"""The plan lists its rows by device_id (byte-wise), then port_id, though the server no
longer sorts the candidates (issue 14: its sort came before the first row).

The ports are written so that the table's own order (port_id) is not the device_id
order, device ids differ in case (a case-insensitive collation would put ``a`` before
``B``; bytes put ``B`` first) and one VM has two ports.
"""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from testkit.repairkit import (
    CloudSpec,
    cli_json,
    install,
    legacy_ovs_agent,
    network,
    port_uuid,
    vm_port,
)

from vifdoctor.sources.database import bytewise

DEVICES = ["vm-b", "vm-B", "vm-a", "vm-\u00e9", "vm-A", "vm-b", "vm-Z"]


def cloud() -> CloudSpec:
    ports = [
        dataclasses.replace(vm_port(n, "compute1", ""), device_id=device)
        for n, device in enumerate(DEVICES)
    ]
    return CloudSpec(networks=[network()], agents=[legacy_ovs_agent("compute1")], ports=ports)


def test_plan_lists_rows_in_bytewise_device_order_then_port(db_url, capsys):
    install(db_url, cloud(), "icehouse")
    code, doc = cli_json(capsys, "plan", "--neutron-db", db_url)
    assert code == 0
    listed = [(c["device_id"], c["port_id"]) for c in doc["changes"]]
    expected = sorted((d, port_uuid(n)) for n, d in enumerate(DEVICES))
    assert listed == expected
    assert listed[0][0] == "vm-A" and listed[-1][0] == "vm-\u00e9"  # bytes, not collation
    # the order the server gave for ORDER BY bytewise(device_id), port_id
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            ports = sa.Table("ports", sa.MetaData(), autoload_with=conn)
            served = conn.execute(
                sa.select(ports.c.device_id, ports.c.id).order_by(
                    bytewise(ports.c.device_id, engine.dialect.name), ports.c.id
                )
            ).all()
    finally:
        engine.dispose()
    assert listed == [tuple(r) for r in served]
