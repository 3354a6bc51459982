"""Property tests: whatever text sits in vif_details, profile or an agent's configurations,
the rules never raise, and VD104/VD111 say exactly whether it is a JSON object.

The oracle is written here, independently of vifdoctor: Neutron's
``Ml2Plugin._get_vif_details`` treats '' as {} and anything else goes through
``jsonutils.loads`` (= ``json.loads``); a column is malformed when that fails or
gives something other than an object.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testkit.cloudfactory import HYBRID, agent, binding, pairs, run_cli, write

from vifdoctor.demo.builder import (
    AgentSpec,
    BindingSpec,
    CloudSpec,
    NetworkSpec,
    PortSpec,
    SegmentSpec,
)
from vifdoctor.model import NovaGeneration
from vifdoctor.rules.binding import agent_finding, judge_binding
from vifdoctor.rules.plug import (
    AGENT_LINUXBRIDGE,
    AGENT_OVS,
    FW_IPTABLES_HYBRID,
    FW_NOOP,
    FW_OPENVSWITCH,
    FirewallAssumption,
    RuleContext,
)


def does_not_parse(text: str) -> bool:
    """Our own oracle: text ``json.loads`` refuses (Neutron then shows {})."""
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return True
    return False


def is_malformed(text: str) -> bool:
    """Our own oracle: non-empty and not a JSON object."""
    if text == "":
        return False
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return True
    return not isinstance(value, dict)


# Keys the rules read, so generated objects hit the interesting branches.
DETAIL_KEYS = st.sampled_from(
    [
        "port_filter",
        "ovs_hybrid_plug",
        "datapath_type",
        "bridge_name",
        "ovs_create_tap",
        "connectivity",
        "vhostuser_mode",
    ]
)
AGENT_KEYS = st.sampled_from(
    [
        "ovs_hybrid_plug",
        "datapath_type",
        "ovs_capabilities",
        "integration_bridge",
        "bridge_mappings",
        "iface_types",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["system", "netdev", "dpdkvhostuser", "false", "true", ""])
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | DETAIL_KEYS | AGENT_KEYS, inner, max_size=4)
    ),
    max_leaves=12,
)


def json_objects(keys) -> st.SearchStrategy[str]:
    return st.dictionaries(keys | st.text(max_size=10), JSON_VALUES, max_size=6).map(json.dumps)


def truncated(texts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A JSON text cut somewhere (as at VARCHAR(4095)), possibly at its full length."""
    return st.tuples(texts, st.integers(min_value=0, max_value=200)).map(
        lambda t: t[0][: max(0, len(t[0]) - t[1])]
    )


def column_texts(keys) -> st.SearchStrategy[str]:
    objects = json_objects(keys)
    return st.one_of(
        st.text(),
        st.just(""),
        objects,
        truncated(objects),
        JSON_VALUES.map(json.dumps),  # lists, scalars, null
        st.lists(JSON_VALUES, max_size=5).map(json.dumps),
        # huge values: a big object, and raw text up to 5000 characters
        st.integers(min_value=0, max_value=5000).map(lambda n: json.dumps({"k": "x" * n})),
        st.integers(min_value=1, max_value=5000).map(lambda n: "{" * n),
        st.text(min_size=1000, max_size=5000, alphabet='{}[]",:0123456789 tfnaelsru'),
        st.sampled_from([" ", "null", "[]", "{}", "NaN", '{"a": NaN}', "\x00", '{"\\ud800": 1}']),
    )


CONTEXTS = st.builds(
    RuleContext,
    firewall=st.sampled_from([FW_IPTABLES_HYBRID, FW_OPENVSWITCH, FW_NOOP]).map(
        lambda d: FirewallAssumption(d, "fuzz")
    ),
    firewall_explicit=st.booleans(),
    enable_security_group=st.booleans(),
    nova_generation=st.sampled_from(list(NovaGeneration)),
    nova_firewall_driver=st.sampled_from(
        [
            "nova.virt.firewall.NoopFirewallDriver",
            "nova.virt.libvirt.firewall.IptablesFirewallDriver",
        ]
    ),
)
VIF_TYPES = st.sampled_from(
    ["ovs", "vhostuser", "bridge", "binding_failed", "unbound", "hw_veb", "distributed", "other"]
)


@settings(deadline=None, max_examples=400)
@given(
    details=column_texts(DETAIL_KEYS),
    profile=column_texts(DETAIL_KEYS),
    config=column_texts(AGENT_KEYS),
    vif_type=VIF_TYPES,
    driver=st.sampled_from(["openvswitch", "linuxbridge", None, "ovn"]),
    status=st.sampled_from(["ACTIVE", "INACTIVE", None]),
    owner=st.sampled_from(["compute:nova", "network:dhcp", ""]),
    agent_type=st.sampled_from([AGENT_OVS, AGENT_LINUXBRIDGE]),
    alive=st.booleans(),
    ctx=CONTEXTS,
)
def test_rules_never_raise_and_vd104_vd111_match_the_oracle(
    details, profile, config, vif_type, driver, status, owner, agent_type, alive, ctx
):
    a = agent("compute1", agent_type, alive=alive, raw=config)
    b = binding(
        vif_details=details,
        profile=profile,
        vif_type=vif_type,
        driver=driver,
        status=status,
        device_owner=owner,
    )
    judgement = judge_binding(b, [a], ctx)

    vd104 = {f.extra["column"] for f in judgement.findings if f.code == "VD104"}
    expected = {
        c for c, text in (("vif_details", details), ("profile", profile)) if is_malformed(text)
    }
    assert vd104 == expected
    assert len([f for f in judgement.findings if f.code == "VD104"]) == len(expected)
    if is_malformed(details) and not does_not_parse(details):
        # JSON that is not an object: Neutron hands it to Nova as is; judged no further
        assert {f.code for f in judgement.findings} == {"VD104"}
        assert judgement.category == "malformed vif_details"
    elif is_malformed(details):
        # Text that does not parse: Neutron hands Nova {}, so the row is judged as the
        # empty text would be (what API mode sees), VD104 aside; never a repair target
        as_empty = judge_binding(dataclasses.replace(b, vif_details=""), [a], ctx)
        assert sorted(f.code for f in judgement.findings if f.code != "VD104") == sorted(
            f.code for f in as_empty.findings if f.code != "VD104"
        )
        assert judgement.category == as_empty.category
        assert all(f.correction is None for f in judgement.findings)
    for f in judgement.findings:
        f.as_dict()  # every finding renders
        json.dumps(f.as_dict(), default=str)

    finding = agent_finding(a)
    assert (finding is not None) == is_malformed(config)
    if finding is not None:
        assert finding.code == "VD111"
        assert len(finding.message) < 600  # the raw value is cut short


# ------------------------------------------------------------------- through the DB

NET, SEG, PROJ = "n-1", "s-1", "proj-1"


@settings(
    deadline=None,
    max_examples=30,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    rows=st.lists(
        st.tuples(column_texts(DETAIL_KEYS), column_texts(DETAIL_KEYS)), min_size=1, max_size=4
    ),
    config=column_texts(AGENT_KEYS),
    layout=st.sampled_from(["icehouse", "ocata"]),
)
def test_cli_audit_of_arbitrary_rows_never_fails(rows, config, layout):
    spec = CloudSpec(
        [NetworkSpec(NET, "net", PROJ, [SegmentSpec(SEG)])],
        [AgentSpec("compute1", AGENT_OVS, config)],  # a str is stored as is
        [
            PortSpec(
                f"port-{i}",
                NET,
                "compute:nova",
                f"vm-{i}",
                PROJ,
                BindingSpec("compute1", "ovs", details, profile=profile, segment_id=SEG),
            )
            for i, (details, profile) in enumerate(rows)
        ]
        + [
            PortSpec(
                "port-ok",
                NET,
                "compute:nova",
                "vm-ok",
                PROJ,
                BindingSpec("compute1", "ovs", HYBRID, segment_id=SEG),
            )
        ],
    )
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'neutron.sqlite'}"
        write(url, spec, layout)
        code, out, err = run_cli(["audit", "--neutron-db", url, "-f", "json"])
        assert code in (0, 1, 2), err
        doc = json.loads(out)
        assert doc["summary"]["bindings"] == len(rows) + 1
        expected = {
            ("VD104", f"port-{i}")
            for i, (d, p) in enumerate(rows)
            if is_malformed(d) or is_malformed(p)
        }
        assert {p for p in pairs(doc) if p[0] == "VD104"} == expected
        assert (("VD111", "compute1") in pairs(doc)) == is_malformed(config)
        # the same run in every other format renders too
        for fmt in ("table", "csv", "value", "yaml"):
            fcode, _, ferr = run_cli(["audit", "--neutron-db", url, "-f", fmt])
            assert fcode == code, ferr
