"""The repair's plan takes a candidate of an already planned shape by its packed bytes
(issue 14): never built, judged or planned, it gets its shape's record with its own port
and device ids, or is dropped when its shape planned no change.

What must not change: every record (the change and what the backup keeps of the row),
every note of a value too long, in the same order, as when every candidate is read
column by column and planned on its own (``VIFDOCTOR_PACKED_ROWS=0``). The cloud is
made of rows alike but for one field that matters: ids, stored text (one space),
host, owner, profile, vnic_type and, where the backup keeps it, the segment.
"""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa
from testkit.repairkit import (
    HYBRID,
    install,
    legacy_ovs_agent,
    network,
    port_uuid,
    reporting_ovs_agent,
)

from vifdoctor.demo.builder import BindingSpec, CloudSpec, NetworkSpec, PortSpec, SegmentSpec
from vifdoctor.model import Binding
from vifdoctor.options import RepairOptions
from vifdoctor.repair import workflow
from vifdoctor.repair.changespool import Record
from vifdoctor.repair.plan import repair_codes
from vifdoctor.session import neutron_session
from vifdoctor.sources.interface import EVERYTHING
from vifdoctor.sources.neutron_db import NeutronDatabase
from vifdoctor.sources.packed import ENV_PACKED_ROWS

# compact JSON that json.dumps lengthens past the column (VARCHAR(4095)) once fixed
LONG = '{"x":"' + "y" * 4060 + '","port_filter":true}'


def _port(n: int, host: str, details: str, **binding: object) -> PortSpec:
    owner = str(binding.pop("owner", "compute:nova"))
    return PortSpec(
        id=port_uuid(n),
        network_id=network().id,
        device_owner=owner,
        device_id=f"vm-{n % 7}" if n % 5 else "",  # several ports a VM; some with none
        project_id="p",
        binding=BindingSpec(
            host=host,
            vif_type="ovs",
            vif_details=details,
            segment_id=str(binding.pop("segment", "seg-a")),
            **binding,  # type: ignore[arg-type]
        ),
    )


def _cloud() -> CloudSpec:
    legacy, modern = "legacy-1", "modern-1"
    texts = ["", "{}", '{"port_filter": true}', '{"port_filter":  true}', HYBRID, LONG]
    ports = []
    for n in range(120):
        host = (legacy, modern, "legacy-2")[n % 3]
        extra: dict[str, object] = {"segment": ("seg-a", "seg-b")[n // 3 % 2]}
        if n % 11 == 0:
            extra["owner"] = "compute:az-1"
        if n % 13 == 0:
            extra["profile"] = '{"migrating_to": "legacy-2"}'
        if n % 17 == 0:
            extra["vnic_type"] = "direct"
        ports.append(_port(n, host, texts[n % len(texts)], **extra))
    net = network()
    segments = [
        SegmentSpec(id=s, network_type="vxlan", segmentation_id=i)
        for i, s in enumerate(("seg-a", "seg-b"), 1)
    ]
    return CloudSpec(
        networks=[
            NetworkSpec(id=net.id, name=net.name, project_id=net.project_id, segments=segments)
        ],
        agents=[
            legacy_ovs_agent(legacy),
            legacy_ovs_agent("legacy-2"),
            reporting_ovs_agent(modern, True),
        ],
        ports=ports,
    )


def _plan(
    url: str, monkeypatch: pytest.MonkeyPatch, packed: bool
) -> tuple[list[Record], list, int]:
    """The plan's records (with the backup's columns), its notes, and how many
    candidates took their shape's record."""
    monkeypatch.setenv(ENV_PACKED_ROWS, "1" if packed else "0")
    taken = []
    real = workflow._Shape.record

    def counted(self: workflow._Shape, port_id: str, device_id: str) -> Record:
        taken.append(port_id)
        return real(self, port_id, device_id)

    monkeypatch.setattr(workflow._Shape, "record", counted)
    with neutron_session(RepairOptions(neutron_db=url)) as s:
        spool, too_long = workflow._plan(s, repair_codes([]), None, backup=True)
        return list(spool.records()), too_long, len(taken)


@pytest.mark.parametrize("layout", ["ocata", "kilo", "icehouse"])
def test_candidates_of_a_known_shape_plan_as_when_each_is_built(
    mariadb_url: str, monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    install(mariadb_url, _cloud(), layout)
    built, built_notes, none = _plan(mariadb_url, monkeypatch, packed=False)
    shaped, notes, taken = _plan(mariadb_url, monkeypatch, packed=True)
    assert none == 0 and len(built) > 30
    assert shaped == built  # the changes and the backup's columns, in plan order
    assert notes == built_notes and len(notes) >= 2  # every too-long row named
    originals = {rec[1] for rec in built}
    assert len(originals) == len(built)  # each row's own columns
    if layout == "icehouse":
        # the backup keeps the row's segment, which no shape holds: rows built
        assert taken == 0
        assert {v for rec in built for v in rec[1]} >= {"seg-a", "seg-b"}
    else:
        assert taken >= len(built) // 2


def test_a_shape_with_another_segment_in_the_backup_is_not_taken() -> None:
    """The guard: a shape's record stands for its rows only where the backup's columns
    are all in the shape but the port id."""
    cols = [("port_id", "port_id", False), ("host", "host", False)]
    assert workflow._shape_place(cols) == 0
    assert workflow._shape_place(None) == -1
    assert workflow._shape_place([*cols, ("segment", "segment", False)]) is None
    assert workflow._shape_place([("host", "host", False)]) is None


def test_fields_left_unread_come_empty_and_nothing_else_moves(
    mariadb_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``omit``: the fields the plan never reads are not sent; every other field, and
    every shape, is what the full read gives."""
    install(mariadb_url, _cloud(), "kilo")
    monkeypatch.setenv(ENV_PACKED_ROWS, "1")
    omit = frozenset({"network_id", "project_id", "port_status", "segment"})
    engine = sa.create_engine(mariadb_url)
    try:
        with NeutronDatabase(engine) as source:
            full = list(source.repair_candidates(EVERYTHING, frozenset({"ovs"})))
            slim = list(
                source.repair_candidates_known(EVERYTHING, frozenset({"ovs"}), {}, None, omit)
            )
    finally:
        engine.dispose()
    assert len(full) == len(slim) > 100
    assert {b.segment for b in full} == {"seg-a", "seg-b"} and {b.network_id for b in full} != {""}
    blank = {"network_id": "", "project_id": "", "port_status": "", "segment": None}
    by_key = {(b.port_id, b.host): b for b in slim}
    for b in full:
        got = by_key[b.port_id, b.host]
        assert isinstance(got, Binding) and got.shape is not None
        assert got == dataclasses.replace(b, **blank)
