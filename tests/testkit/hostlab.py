"""A throw-away compute host per test, wired by the real OpenStack code.

Each :class:`ComputeHost` is one Linux network namespace (``vdlab-<hex>``) with
its own ``ovsdb-server`` and userspace ``ovs-vswitchd`` (``--disable-system``:
bridges are ``datapath_type=netdev``, no kernel module needed) and an
integration bridge ``br-int``. Ports are plugged by nova 34.0.0's own
``LibvirtGenericVIFDriver().plug()`` (which calls os-vif 5.3.0), run with the
nova venv's python inside the namespace; the domain XML comes from the same
driver's ``get_config()`` and is served by libvirt's test driver
(``test:///<node.xml>``). ``vifdoctor host-scan`` then runs inside the namespace.

Nothing here skips: a machine that refuses network namespaces, or lacks Open
vSwitch, virsh or the nova venv, makes the test fail with the reason.

Use: ``pytest_plugins = ["testkit.hostlab"]`` in a test module, then the
``compute_host`` fixture.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from vifdoctor.demo.ovnlab import daemon_args, daemon_pid, stop_daemon

REPO_ROOT = Path(__file__).resolve().parents[2]
NOVA_VENV = Path(os.environ.get("VIFDOCTOR_NOVA_VENV", REPO_ROOT / ".cache" / "nova-venv"))
NOVA_PYTHON = NOVA_VENV / "bin" / "python"
OVS_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
INTEGRATION_BRIDGE = "br-int"
NIC_NAME_LEN = 14
TOOLS = ("ip", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "virsh")
APT_HINT = "apt-get install -y openvswitch-switch libvirt-clients iproute2 (or run .ci/run)"

#: Seconds per step, for the terminal summary (key -> durations).
TIMINGS: dict[str, list[float]] = {}

# What nova-compute does on the host, reduced to the two driver calls. Runs with the
# nova venv's python inside the namespace. Input on stdin (JSON): ovsdb connection,
# host name, instances with their network_info VIFs. Output on stdout (JSON): each
# interface's libvirt XML as nova generated it.
PLUG_SCRIPT = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
t0 = time.monotonic()
spec = json.load(sys.stdin)

from oslo_config import cfg
from nova import config as nova_config
from nova import objects
nova_config.parse_args([], configure_db=False, init_rpc=False)
objects.register_all()

import os_vif
from vif_plug_ovs import ovs as vif_ovs
from vif_plug_ovs import privsep as vif_ovs_privsep

# As root there is no need for a privsep daemon: run os-vif's privileged calls here.
vif_ovs_privsep.vif_plug.set_client_mode(False)
# os-vif registers [os_vif_ovs] when it loads the plugin and the plugin reads
# ovsdb_connection when it is built: the override must be in place before initialize().
cfg.CONF.register_opts(vif_ovs.OvsPlugin.CONFIG_OPTS, group="os_vif_ovs")
cfg.CONF.set_override("ovsdb_connection", spec["ovsdb"], group="os_vif_ovs")
cfg.CONF.set_override("ovs_vsctl_timeout", 10, group="os_vif_ovs")
os_vif.initialize()

from nova.network import model as network_model
from nova.virt.libvirt import vif as libvirt_vif

driver = libvirt_vif.LibvirtGenericVIFDriver()
image_meta = objects.ImageMeta.from_dict({"properties": {}})
out = {"instances": []}
for inst in spec["instances"]:
    flavor = objects.Flavor(name="m1.tiny", memory_mb=64, vcpus=1, root_gb=1,
                            ephemeral_gb=0, swap=0, extra_specs={})
    instance = objects.Instance(
        id=inst["id"], uuid=inst["uuid"], display_name=inst["uuid"],
        host=spec["host"], node=spec["host"], project_id=inst["project_id"],
        user_id="lab-user", flavor=flavor, system_metadata={}, image_ref="")
    done = {"uuid": inst["uuid"], "name": instance.name, "interfaces": []}
    for raw in inst["vifs"]:
        vif = network_model.VIF.hydrate(raw)
        if not inst.get("config_only"):
            driver.plug(instance, vif)
        conf = driver.get_config(instance, vif, image_meta, flavor, "kvm")
        done["interfaces"].append(conf.to_xml())
    out["instances"].append(done)
out["seconds"] = round(time.monotonic() - t0, 3)
json.dump(out, sys.stdout)
"""


class LabError(RuntimeError):
    """The lab could not be built or driven (not a vifdoctor finding)."""


def record(key: str, seconds: float) -> None:
    """Keep one step's seconds for the terminal summary."""
    TIMINGS.setdefault(key, []).append(seconds)


def dev(prefix: str, port_id: str) -> str:
    return (prefix + port_id)[:NIC_NAME_LEN]


def missing_prerequisites() -> list[str]:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if not OVS_SCHEMA.is_file():
        missing.append(str(OVS_SCHEMA))
    if not NOVA_PYTHON.exists():
        missing.append(f"{NOVA_PYTHON} (build it with scripts/openstack-venv)")
    return missing


@dataclass
class Domain:
    uuid: str
    name: str
    interfaces: list[str] = field(default_factory=list)  # <interface> XML from nova


class ComputeHost:
    """One namespace with its own OVS; ports plugged by nova/os-vif; domains for virsh."""

    def __init__(self, name: str | None = None) -> None:
        token = secrets.token_hex(4)
        self.netns = f"vdlab-{token}"
        self.name = name or f"lab-{token}"
        # Short and private: a unix socket path must stay under 108 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self.netns}-", dir="/tmp"))
        self.ovsdb = f"unix:{self.dir / 'db.sock'}"
        self.node_xml = self.dir / "node.xml"
        self.libvirt_uri = f"test://{self.node_xml}"
        self.domains: dict[str, Domain] = {}
        self.setup_seconds: float | None = None
        self.plug_seconds: list[float] = []
        self._ns_made = False
        self._next_id = 1
        self.env = {
            **os.environ,
            "OVS_RUNDIR": str(self.dir),
            "OVS_DBDIR": str(self.dir),
            "OVS_LOGDIR": str(self.dir),
            "OVS_SYSCONFDIR": str(self.dir),
            "OVS_PKGDATADIR": str(OVS_SCHEMA.parent),
            "OVN_RUNDIR": str(self.dir),  # ovn-controller's control socket (no --unixctl)
            "OVN_LOGDIR": str(self.dir),
            "PYTHONWARNINGS": "ignore",
        }

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ComputeHost:
        missing = missing_prerequisites()
        if missing:
            raise LabError(f"host lab prerequisites missing: {', '.join(missing)}; {APT_HINT}")
        t0 = time.monotonic()
        done = subprocess.run(
            ["ip", "netns", "add", self.netns], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise LabError(
                f"this machine refuses network namespaces (`ip netns add {self.netns}` exited "
                f"{done.returncode}: {done.stderr.strip()}); the host-wiring tests need root "
                "and CAP_SYS_ADMIN (a privileged container)"
            )
        self._ns_made = True
        self.ns(["ip", "link", "set", "lo", "up"])
        d = self.dir
        self._run(["ovsdb-tool", "create", str(d / "conf.db"), str(OVS_SCHEMA)])
        self.ns(
            [
                "ovsdb-server",
                str(d / "conf.db"),
                f"--remote=p{self.ovsdb}",
                *daemon_args(d, "ovsdb-server"),
            ]
        )
        self.vsctl("--no-wait", "init")
        self.ns(
            [
                "ovs-vswitchd",
                self.ovsdb,
                "--disable-system",
                *daemon_args(d, "ovs-vswitchd"),
            ]
        )
        self.vsctl(
            "add-br",
            INTEGRATION_BRIDGE,
            "--",
            "set",
            "Bridge",
            INTEGRATION_BRIDGE,
            "datapath_type=netdev",
        )
        self.write_node_xml()
        self.setup_seconds = time.monotonic() - t0
        record("host lab setup (netns + ovsdb-server + ovs-vswitchd + br-int)", self.setup_seconds)
        return self

    def stop(self) -> None:
        """Kill the daemons this lab started, then delete the namespace; never raises."""
        t0 = time.monotonic()
        for daemon in ("ovn-controller", "ovs-vswitchd", "ovsdb-server"):
            self._kill(daemon)
        if self._ns_made:
            subprocess.run(["ip", "netns", "del", self.netns], capture_output=True, check=False)
            self._ns_made = False
        if not os.environ.get("VIFDOCTOR_KEEP_LAB"):
            shutil.rmtree(self.dir, ignore_errors=True)
        record("host lab teardown", time.monotonic() - t0)

    def _pid(self, daemon: str) -> int | None:
        return daemon_pid(self.dir, daemon)

    def _kill(self, daemon: str, timeout: float = 5.0) -> bool:
        """Stop a daemon this lab started (by its pid file; never another process)."""
        return stop_daemon(self.dir, daemon, timeout)

    def start_ovn_controller(
        self, sb: str, system_id: str, *, encap_ip: str = "127.0.0.1", hostname: str | None = None
    ) -> None:
        """Make this host an OVN chassis: the Open_vSwitch row's external_ids as a deployment
        tool sets them (system-id, hostname, ovn-remote, ovn-encap-type/ip), then a real
        ``ovn-controller`` against the SB ``sb`` (a unix socket works from the namespace).

        The caller waits for the chassis to appear in the SB (the lab's SB tools)."""
        if shutil.which("ovn-controller") is None:
            raise LabError("ovn-controller not found; apt-get install -y ovn-host (or run .ci/run)")
        self.vsctl(
            "set",
            "Open_vSwitch",
            ".",
            f"external_ids:system-id={system_id}",
            f"external_ids:hostname={hostname or self.name}",
            f"external_ids:ovn-remote={sb}",
            "external_ids:ovn-encap-type=geneve",
            f"external_ids:ovn-encap-ip={encap_ip}",
            f"external_ids:ovn-bridge={INTEGRATION_BRIDGE}",
            "external_ids:ovn-bridge-datapath-type=netdev",
        )
        self.ns(
            ["ovn-controller", self.ovsdb, *daemon_args(self.dir, "ovn-controller", unixctl=False)]
        )

    def stop_ovn_controller(self) -> None:
        """SIGTERM ovn-controller, as a crash or a stopped service leaves the host: its
        chassis and claims stay in the SB."""
        if not self._kill("ovn-controller"):
            raise LabError("ovn-controller was not running")

    def kill_ovsdb(self) -> None:
        """Stop this host's ovsdb-server (a host whose OVS database is down)."""
        if not self._kill("ovsdb-server"):
            raise LabError("ovsdb-server was not running")

    # ------------------------------------------------------------------ commands

    def _run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        stdin: str | None = None,
        env: dict | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            input=stdin,
            env=env or self.env,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise LabError(
                f"{' '.join(argv)} exited {done.returncode}: "
                f"{(done.stderr or done.stdout).strip()[-2000:]}"
            )
        return done

    def ns(self, argv: Sequence[str], **kw) -> subprocess.CompletedProcess:
        """Run a command inside this host's namespace."""
        return self._run(["ip", "netns", "exec", self.netns, *argv], **kw)

    def vsctl(self, *args: str, check: bool = True) -> str:
        return self.ns(
            ["ovs-vsctl", f"--db={self.ovsdb}", "--timeout=10", *args], check=check
        ).stdout

    def links(self) -> dict[str, dict]:
        items = json.loads(self.ns(["ip", "-j", "-d", "link", "show"]).stdout or "[]")
        return {i["ifname"]: i for i in items}

    # ------------------------------------------------------------------ plugging

    def plug(
        self,
        instance_uuid: str,
        vifs: list[dict],
        *,
        project_id: str = "lab-project",
        running: bool = True,
        plug: bool = True,
    ) -> Domain:
        """Plug ``vifs`` (Nova network_info entries) the way nova-compute does, add the domain.

        Hybrid ports: os-vif builds qbr/qvb/qvo, then the tap libvirt would create is
        made and enslaved to the qbr. Direct ports: os-vif adds the tap port to br-int
        (``delegate_create``); it creates the tap itself when the details say
        ``ovs_create_tap``, else the lab creates it first, as libvirt would.
        ``plug=False`` only builds the domain XML (a domain whose ports are elsewhere).
        """
        if plug:
            for vif in vifs:
                hybrid = bool(vif.get("details", {}).get("ovs_hybrid_plug"))
                if not hybrid and not vif.get("details", {}).get("ovs_create_tap"):
                    self.make_tap(vif["devname"], vif["address"])
        spec = {
            "ovsdb": self.ovsdb,
            "host": self.name,
            "instances": [
                {
                    "id": self._next_id,
                    "uuid": instance_uuid,
                    "project_id": project_id,
                    "vifs": vifs,
                    "config_only": not plug,
                }
            ],
        }
        self._next_id += 1
        script = self.dir / "nova_plug.py"
        script.write_text(PLUG_SCRIPT)
        t0 = time.monotonic()
        done = self.ns([str(NOVA_PYTHON), str(script)], stdin=json.dumps(spec), check=False)
        elapsed = time.monotonic() - t0
        if done.returncode != 0:
            raise LabError(f"nova plug failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
        result = json.loads(done.stdout)
        if plug:
            self.plug_seconds.append(elapsed)
            record("nova LibvirtGenericVIFDriver.plug + get_config (one python run)", elapsed)
            for vif in vifs:
                if vif.get("details", {}).get("ovs_hybrid_plug"):
                    qbr = dev("qbr", vif["id"])
                    self.make_tap(vif["devname"], vif["address"])
                    self.ns(["ip", "link", "set", vif["devname"], "master", qbr])
        (inst,) = result["instances"]
        domain = Domain(uuid=inst["uuid"], name=inst["name"], interfaces=inst["interfaces"])
        if running:
            self.domains[domain.uuid] = domain
            self.write_node_xml()
        return domain

    def make_tap(self, name: str, mac: str | None = None) -> None:
        if name in self.links():
            return
        self.ns(["ip", "tuntap", "add", name, "mode", "tap"])
        if mac:
            self.ns(["ip", "link", "set", name, "address", mac])
        self.ns(["ip", "link", "set", name, "up"])

    def drop_domain(self, uuid: str) -> None:
        """The domain is gone from libvirt (deleted); its devices stay."""
        del self.domains[uuid]
        self.write_node_xml()

    def write_node_xml(self) -> None:
        """Every domain as libvirt's test driver reads it: all listed domains run."""
        parts = ["<node>"]
        for d in self.domains.values():
            parts.append(
                "<domain type='test'>\n"
                f"  <name>{escape(d.name)}</name>\n  <uuid>{escape(d.uuid)}</uuid>\n"
                "  <memory unit='KiB'>65536</memory>\n  <vcpu>1</vcpu>\n"
                "  <os><type arch='x86_64'>hvm</type></os>\n  <devices>\n"
                + "".join(d.interfaces)
                + "  </devices>\n</domain>"
            )
        parts.append("</node>\n")
        self.node_xml.write_text("\n".join(parts))

    # ------------------------------------------------------------------ scanning

    def scan(
        self, output: Path, *extra: str, env: dict | None = None, host_name: str | None = None
    ) -> tuple[int, dict, str]:
        """``vifdoctor host-scan`` inside the namespace: (exit code, report, stderr)."""
        argv = [
            sys.executable,
            "-m",
            "vifdoctor",
            "host-scan",
            "-o",
            str(output),
            "--host-name",
            host_name or self.name,
            "--libvirt-uri",
            self.libvirt_uri,
            "--ovsdb",
            self.ovsdb,
            *extra,
        ]
        t0 = time.monotonic()
        done = self.ns(argv, check=False, env=env or self.env)
        record("vifdoctor host-scan (in the namespace)", time.monotonic() - t0)
        if done.returncode not in (0, 1):
            raise LabError(f"host-scan exited {done.returncode}: {done.stderr.strip()}")
        return done.returncode, json.loads(output.read_text()), done.stderr


@contextlib.contextmanager
def compute_host_lab(name: str | None = None) -> Iterator[ComputeHost]:
    host = ComputeHost(name)
    try:
        host.start()
        yield host
    finally:
        host.stop()


@pytest.fixture
def compute_host() -> Iterator[ComputeHost]:
    """A fresh compute host (namespace + OVS + br-int), torn down even if the test fails.

    Its runtime folder (/tmp/vdlab-*: OVS database, logs, node.xml) is removed
    afterwards unless VIFDOCTOR_KEEP_LAB is set.
    """
    lab = ComputeHost()
    try:
        try:
            lab.start()
        except LabError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield lab
    finally:
        lab.stop()


def pytest_terminal_summary(terminalreporter) -> None:
    if not TIMINGS:
        return
    terminalreporter.section("host lab timings")
    for key, values in TIMINGS.items():
        terminalreporter.write_line(
            f"{key}: n={len(values)} mean={sum(values) / len(values):.2f}s max={max(values):.2f}s"
        )
