"""A real neutron 29.0.0 API server for the API-mode tests, on its own MariaDB database.

neutron 29.0.0 has no ``neutron-server`` command: its API is the WSGI app
``neutron.wsgi.api:application``, served here by gunicorn from
``.cache/openstack-venv`` on 127.0.0.1 with ``auth_strategy = noauth`` (a request
without headers runs as admin), ``transport_url = fake:/`` and ML2 with the
openvswitch mechanism driver. Agents are rows in the ``agents`` table whose
heartbeat the tests keep fresh (:meth:`NeutronServer.refresh_agents`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from testkit import dbfixtures

GUNICORN = dbfixtures.OPENSTACK_VENV / "bin" / "gunicorn"
API_PASTE = dbfixtures.OPENSTACK_VENV / "etc" / "neutron" / "api-paste.ini"
READY_TIMEOUT = 60.0

NEUTRON_CONF = """[DEFAULT]
core_plugin = ml2
service_plugins =
auth_strategy = noauth
transport_url = fake:/
api_paste_config = {paste}
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
agent_down_time = 75
api_workers = 1
debug = false
use_stderr = true

[database]
connection = {db_url}

[ml2]
type_drivers = flat,vlan,vxlan
tenant_network_types = vxlan
mechanism_drivers = openvswitch
extension_drivers = port_security

[ml2_type_vxlan]
vni_ranges = 1:1000

[securitygroup]
enable_security_group = true

[oslo_concurrency]
lock_path = {workdir}/lock
"""

# gunicorn leaves its own argv in sys.argv, which neutron's oslo.config would parse:
# the app module resets it to neutron's own arguments before importing neutron.
WSGI_MODULE = """import sys
sys.argv = ["neutron-api", "--config-file", {conf!r}]
from neutron.wsgi.api import application  # noqa: E402,F401
"""


#: What a real OVS agent reports (ovs_neutron_agent._report_state), per firewall driver.
def ovs_agent_configurations(hybrid: bool, *, datapath_type: str = "system") -> dict:
    return {
        "arp_responder_enabled": False,
        "baremetal_smartnic": False,
        "bridge_mappings": {},
        "datapath_type": datapath_type,
        "devices": 0,
        "enable_distributed_routing": False,
        "extensions": [],
        "in_distributed_mode": False,
        "integration_bridge": "br-int",
        "l2_population": False,
        "log_agent_heartbeats": False,
        "ovs_capabilities": {
            "datapath_types": ["netdev", "system"],
            "iface_types": ["geneve", "gre", "internal", "system", "vxlan"],
        },
        "ovs_hybrid_plug": hybrid,
        "resource_provider_bandwidths": {},
        "tunnel_types": ["vxlan"],
        "tunneling_ip": "192.0.2.10",
        "vhostuser_socket_dir": "/var/run/openvswitch",
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(
    gunicorn: Path,
    workdir: Path,
    module: str,
    port: int,
    log: Path,
    ready_url: str,
    what: str,
    timeout: float,
) -> tuple[subprocess.Popen, float]:
    """Serve ``module:application`` under gunicorn and wait until ``ready_url`` answers 200.

    Fails the test (never skips) with the log's tail when the server dies or is late.
    Returns the process (its own session: master and worker) and the seconds it took.
    """
    start = time.monotonic()
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                str(gunicorn),
                "--pythonpath",
                str(workdir),
                "-b",
                f"127.0.0.1:{port}",
                "-w",
                "1",
                "--timeout",
                "120",
                # nova asks neutron for 150 ports' security groups in one URL (~7 KB): the
                # limit of a real neutron-server's request line, not gunicorn's 4 KB default
                "--limit-request-line",
                "16384",
                f"{module}:application",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited ({proc.returncode}):\n{_tail(log)}", pytrace=False)
        with contextlib.suppress(OSError), urllib.request.urlopen(ready_url, timeout=5) as r:
            if r.status == 200:
                return proc, time.monotonic() - start
        if time.monotonic() - start > timeout:
            stop_gunicorn(proc)
            pytest.fail(f"{what} not ready in {timeout:.0f} s:\n{_tail(log)}", pytrace=False)
        time.sleep(0.1)


def stop_gunicorn(proc: subprocess.Popen | None) -> None:
    """SIGTERM the server's whole session, SIGKILL if it lingers."""
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (gunicorn master + worker)."""
    total = 0
    pids = [pid]
    with contextlib.suppress(OSError):
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(k) for k in kids]
    for p in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


class NeutronServer:
    """One running API server: its URL, its database, a clouds.yaml pointing at it."""

    def __init__(self, db_url: str, workdir: Path):
        self.db_url = db_url
        self.workdir = workdir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.clouds_yaml = workdir / "clouds.yaml"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "neutron-api.log"
        self.engine = sa.create_engine(db_url)
        self.start_seconds = 0.0
        self.rss_mb = 0.0

    # -- lifecycle -------------------------------------------------------
    def start(self) -> NeutronServer:
        conf = self.workdir / "neutron.conf"
        (self.workdir / "lock").mkdir(exist_ok=True)
        conf.write_text(
            NEUTRON_CONF.format(paste=API_PASTE, db_url=self.db_url, workdir=self.workdir)
        )
        (self.workdir / "vd_neutron_wsgi.py").write_text(WSGI_MODULE.format(conf=str(conf)))
        self.clouds_yaml.write_text(
            "clouds:\n"
            "  vdtest:\n"
            "    auth_type: none\n"
            "    auth:\n"
            f"      endpoint: {self.url}\n"
            f"    network_endpoint_override: {self.url}/\n"
        )
        self.proc, self.start_seconds = start_gunicorn(
            GUNICORN,
            self.workdir,
            "vd_neutron_wsgi",
            self.port,
            self.log,
            f"{self.url}/v2.0/extensions",
            "neutron API server",
            READY_TIMEOUT,
        )
        self.rss_mb = _rss_mb(self.proc.pid)
        dbfixtures._record("neutron 29.0.0 API server start (gunicorn)", self.start_seconds)
        return self

    def stop(self) -> None:
        stop_gunicorn(self.proc)
        self.proc = None
        self.engine.dispose()

    # -- what the tests need -----------------------------------------------
    def env(self) -> dict[str, str]:
        """Environment for openstacksdk: only our clouds.yaml, no stray OS_* variables."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        return {**clean, "OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml)}

    def add_agent(
        self,
        host: str,
        configurations: dict | str,
        *,
        agent_type: str = "Open vSwitch agent",
        alive: bool = True,
        admin_state_up: bool = True,
    ) -> str:
        """An agent row whose heartbeat is the database's own UTC time (or an hour old)."""
        agent_id = str(uuid.uuid4())
        conf = configurations if isinstance(configurations, str) else json.dumps(configurations)
        beat = "UTC_TIMESTAMP()" if alive else "UTC_TIMESTAMP() - INTERVAL 1 HOUR"
        with self.engine.begin() as c:
            c.execute(
                sa.text(
                    "INSERT INTO agents (id, agent_type, `binary`, topic, host, admin_state_up, "
                    "created_at, started_at, heartbeat_timestamp, configurations, `load`, "
                    f"resources_synced) VALUES (:id, :t, 'neutron-openvswitch-agent', 'N/A', :h, "
                    f":up, UTC_TIMESTAMP(), UTC_TIMESTAMP(), {beat}, :conf, 0, 1)"
                ),
                {"id": agent_id, "t": agent_type, "h": host, "up": admin_state_up, "conf": conf},
            )
        return agent_id

    def refresh_agents(self) -> None:
        """Keep live agents within agent_down_time (the dead ones stay an hour behind)."""
        with self.engine.begin() as c:
            c.execute(
                sa.text(
                    "UPDATE agents SET heartbeat_timestamp = UTC_TIMESTAMP() "
                    "WHERE heartbeat_timestamp > UTC_TIMESTAMP() - INTERVAL 30 MINUTE"
                )
            )

    def sql(self, statement: str, **params: Any) -> list[Any]:
        with self.engine.begin() as c:
            result = c.execute(sa.text(statement), params)
            return list(result) if result.returns_rows else []


@contextlib.contextmanager
def running_server(db_url: str, workdir: Path) -> Iterator[NeutronServer]:
    """Start the API server on ``db_url`` (a migrated neutron 29.0.0 schema); always stop it."""
    dbfixtures.ensure_openstack_venv()  # adds gunicorn to an older venv in place
    server = NeutronServer(db_url, workdir)
    try:
        yield server.start()
    finally:
        server.stop()
