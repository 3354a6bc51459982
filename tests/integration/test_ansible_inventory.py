"""The neutron_hosts inventory plugin, run by real ansible-inventory, and the plugins' docs.

Name resolution is made deterministic and local: ansible-inventory runs inside a
network namespace of its own, where ``ip netns exec`` bind-mounts an /etc/hosts
that knows some compute hosts and a resolv.conf pointing at 127.0.0.1 (nothing
listens there: an unknown name fails at once, and no DNS query leaves the machine).
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from testkit.ansiblekit import VENV_BIN, ansible_env
from testkit.labcloud import DIRECT_DETAILS, NET, PROJECT, SEG, neutron_db, ovs_agent, vm_port

from vifdoctor.demo.builder import BindingSpec, PortSpec
from vifdoctor.fleet import compute_hosts


@pytest.fixture
def resolver_netns() -> Iterator[str]:
    """A namespace where compute-a resolves (its /etc/hosts) and nothing else does."""
    name = f"vdinv-{secrets.token_hex(4)}"
    etc = Path("/etc/netns") / name
    etc.mkdir(parents=True)
    (etc / "hosts").write_text("127.0.0.1 localhost compute-a\n")
    (etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, check=False)
    try:
        if made.returncode != 0:
            pytest.fail(
                f"ip netns add {name} failed: {made.stderr.strip()} (the inventory "
                "tests need root and network namespaces)",
                pytrace=False,
            )
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        shutil.rmtree(etc, ignore_errors=True)


def _cloud(url: str) -> None:
    def port(host: str) -> PortSpec:
        return vm_port(str(uuid.uuid4()), str(uuid.uuid4()), host, DIRECT_DETAILS)

    dhcp = PortSpec(
        id=str(uuid.uuid4()),
        network_id=NET,
        device_owner="network:dhcp",
        device_id="dhcp-x",
        project_id=PROJECT,
        binding=BindingSpec(
            host="network-1", vif_type="ovs", vif_details=json.dumps(DIRECT_DETAILS), segment_id=SEG
        ),
    )
    neutron_db(
        url,
        [port("compute-a"), port("compute-a"), port("compute-b"), port("compute-gone"), dhcp],
        [
            ovs_agent(h, hybrid=False)
            for h in ("compute-a", "compute-b", "compute-gone", "network-1")
        ],
    )


def test_compute_hosts_are_the_hosts_with_vm_ports(sqlite_url: str) -> None:
    _cloud(sqlite_url)
    assert compute_hosts(neutron_db=sqlite_url) == {
        "compute-a": 2,
        "compute-b": 1,
        "compute-gone": 1,
    }
    assert compute_hosts(neutron_db=sqlite_url, host=["compute-b"]) == {"compute-b": 1}


def _inventory(netns: str, tmp_path: Path, config: dict) -> tuple[dict, str]:
    source = tmp_path / "fleet.neutron_hosts.yml"
    source.write_text(yaml.safe_dump({"plugin": "vifdoctor.openstack.neutron_hosts", **config}))
    env = {
        **ansible_env(tmp_path),
        "ANSIBLE_INVENTORY_ENABLED": "vifdoctor.openstack.neutron_hosts",
    }
    done = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            netns,
            str(VENV_BIN / "ansible-inventory"),
            "-i",
            str(source),
            "--list",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    # values read from Neutron are marked unsafe (never templated): unwrap them to compare
    return json.loads(
        done.stdout, object_hook=lambda d: d.get("__ansible_unsafe", d) if len(d) == 1 else d
    ), done.stderr


def test_inventory_plugin_lists_compute_hosts_and_reports_the_unreachable(
    resolver_netns: str, sqlite_url: str, tmp_path: Path
) -> None:
    _cloud(sqlite_url)
    inv, err = _inventory(
        resolver_netns, tmp_path, {"neutron_db": sqlite_url, "host_map": {"compute-b": "127.0.0.1"}}
    )
    assert sorted(inv["compute"]["hosts"]) == ["compute-a", "compute-b", "compute-gone"]
    assert inv["vifdoctor_unreachable"]["hosts"] == ["compute-gone"]
    hostvars = inv["_meta"]["hostvars"]
    assert "network-1" not in hostvars  # a DHCP port's host is no compute host
    assert hostvars["compute-a"]["vifdoctor_vm_ports"] == 2
    assert hostvars["compute-a"]["vifdoctor_host_name"] == "compute-a"
    assert hostvars["compute-b"]["ansible_host"] == "127.0.0.1"
    assert "cannot reach" in err and "compute-gone" in " ".join(err.split())

    inv, _ = _inventory(
        resolver_netns, tmp_path, {"neutron_db": sqlite_url, "include_unreachable": False}
    )
    assert sorted(inv["compute"]["hosts"]) == ["compute-a"]
    assert sorted(inv["vifdoctor_unreachable"]["hosts"]) == ["compute-b", "compute-gone"]


def test_inventory_plugin_error_is_one_line_without_the_password(
    resolver_netns: str, tmp_path: Path
) -> None:
    secret = "Inv3ntory-s3cret"
    source = tmp_path / "bad.neutron_hosts.yml"
    source.write_text(
        yaml.safe_dump(
            {
                "plugin": "vifdoctor.openstack.neutron_hosts",
                "neutron_db": f"mysql+pymysql://neutron:{secret}@127.0.0.1:1/neutron",
            }
        )
    )
    env = {
        **ansible_env(tmp_path),
        "ANSIBLE_INVENTORY_ENABLED": "vifdoctor.openstack.neutron_hosts",
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
    }
    done = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            resolver_netns,
            str(VENV_BIN / "ansible-inventory"),
            "-i",
            str(source),
            "--list",
            "-vvv",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "vifdoctor could not read Neutron" in done.stderr
    assert secret not in done.stdout + done.stderr


@pytest.mark.parametrize(
    "kind,name",
    [
        ("module", "vifdoctor.openstack.vifdoctor_host_scan"),
        ("module", "vifdoctor.openstack.vifdoctor_audit"),
        ("inventory", "vifdoctor.openstack.neutron_hosts"),
    ],
)
def test_plugin_documentation_renders(kind: str, name: str, tmp_path: Path) -> None:
    """ansible-doc must read every plugin's DOCUMENTATION/EXAMPLES/RETURN (ansible-lint
    does not check them)."""
    done = subprocess.run(
        [str(VENV_BIN / "ansible-doc"), "-t", kind, "--json", name],
        capture_output=True,
        text=True,
        env=ansible_env(tmp_path),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and "ERROR" not in done.stderr, done.stderr
    doc = json.loads(done.stdout)[name]
    assert doc["doc"]["description"] and doc["examples"]
