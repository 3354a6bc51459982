"""The real neutron 29.0.0 API with ``mechanism_drivers = ovn``, pointed at an OVN lab.

What it takes to run (found running it here):

* ``service_plugins = ovn-router``, or the OVN maintenance worker crash-loops;
* ``[ovn] ovn_metadata_enabled = false`` (no metadata agent), noauth, fake transport;
* ``ASGI_WORKERS=1`` in the environment, so the OVN hash ring sees a worker;
* Nova notifications pointed at a closed local port: with them off, neutron 29.0.0
  raises AttributeError (no ``nova_notifier``) on a live-migrating port;
* stop it with SIGKILL: it ignores SIGTERM while its OVN threads run;
* ready when it lists a port the database holds, not at its first ``200``
  (``wait_policy_loaded``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from testkit import dbfixtures
from testkit.neutron_server import (
    GUNICORN,
    WSGI_MODULE,
    NeutronServer,
    _free_port,
    start_gunicorn,
)
from vifdoctor.demo.ovnlab import OvnLab

READY_TIMEOUT = 90.0

OVN_NEUTRON_CONF = """[DEFAULT]
core_plugin = ml2
service_plugins = ovn-router
auth_strategy = noauth
transport_url = fake:/
api_paste_config = {paste}
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
send_events_interval = 1
agent_down_time = 75
api_workers = 1
debug = false
use_stderr = true

[nova]
auth_type = admin_token
endpoint = http://127.0.0.1:{closed}
token = unused

[database]
connection = {db_url}

[ml2]
type_drivers = flat,vlan,geneve,vxlan
tenant_network_types = geneve
mechanism_drivers = ovn
extension_drivers = port_security

[ml2_type_geneve]
vni_ranges = 1:1000
max_header_size = 38

[ml2_type_vxlan]
vni_ranges = 1:1000

[ml2_type_vlan]
network_vlan_ranges = physnet1:100:200,physnet2:100:200

[ml2_type_flat]
flat_networks = *

[ovn]
ovn_nb_connection = {nb}
ovn_sb_connection = {sb}
ovn_metadata_enabled = false
neutron_sync_mode = off

[securitygroup]
enable_security_group = true

[oslo_concurrency]
lock_path = {workdir}/lock
"""


class OvnNeutronServer(NeutronServer):
    """NeutronServer with the OVN driver; its ``conf`` is also what db-sync would read."""

    def __init__(self, db_url: str, workdir: Path, lab: OvnLab):
        super().__init__(db_url, workdir)
        self.lab = lab
        self.conf = workdir / "neutron.conf"

    def write_conf(self) -> Path:
        """neutron.conf for the OVN driver (also what neutron-ovn-db-sync-util reads)."""
        (self.workdir / "lock").mkdir(exist_ok=True)
        self.conf.write_text(
            OVN_NEUTRON_CONF.format(
                paste=dbfixtures.OPENSTACK_VENV / "etc" / "neutron" / "api-paste.ini",
                db_url=self.db_url,
                workdir=self.workdir,
                nb=self.lab.nb,
                sb=self.lab.sb,
                closed=_free_port(),
            )
        )
        return self.conf

    def sync_util(self, mode: str) -> subprocess.CompletedProcess:
        """The real ``neutron-ovn-db-sync-util --ovn-neutron_sync_mode MODE`` on this conf."""
        self.write_conf()
        tool = dbfixtures.OPENSTACK_VENV / "bin" / "neutron-ovn-db-sync-util"
        done = subprocess.run(
            [str(tool), "--config-file", str(self.conf), "--ovn-neutron_sync_mode", mode],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        if done.returncode != 0:
            raise AssertionError(
                f"neutron-ovn-db-sync-util {mode} exited {done.returncode}:\n{done.stderr[-3000:]}"
            )
        return done

    def start(self) -> OvnNeutronServer:
        self.write_conf()
        (self.workdir / "vd_neutron_wsgi.py").write_text(WSGI_MODULE.format(conf=str(self.conf)))
        self.clouds_yaml.write_text(
            "clouds:\n  vdtest:\n    auth_type: none\n    auth:\n"
            f"      endpoint: {self.url}\n    network_endpoint_override: {self.url}/\n"
        )
        old = os.environ.get("ASGI_WORKERS")
        os.environ["ASGI_WORKERS"] = "1"
        try:
            self.proc, self.start_seconds = start_gunicorn(
                GUNICORN,
                self.workdir,
                "vd_neutron_wsgi",
                self.port,
                self.log,
                f"{self.url}/v2.0/ports?limit=1",
                "neutron API server (OVN)",
                READY_TIMEOUT,
            )
            self.wait_policy_loaded(READY_TIMEOUT)
        finally:
            if old is None:
                os.environ.pop("ASGI_WORKERS", None)
            else:
                os.environ["ASGI_WORKERS"] = old
        dbfixtures._record(
            "neutron 29.0.0 API server start with OVN (gunicorn)", self.start_seconds
        )
        return self

    def wait_policy_loaded(self, timeout: float) -> None:
        """Wait until neutron judges requests with its policy rules, i.e. lists a port.

        neutron.policy.init() publishes its Enforcer before it registers and loads the
        rules (0.5-1 s here), and the first caller can be the OVN driver's event thread:
        a port whose LSP is up but which is DOWN in the database -> update_port_statuses
        -> PORT BEFORE_UPDATE -> the default security group check -> policy.check. A
        request the API thread serves meanwhile finds no rule: a list answers 200 but
        empty (the readiness GET passes), a port's GET or PUT 404 "The resource could
        not be found." (the policy hook hides what it refused). Only ports raise those
        events, so with none in the database there is nothing to wait for.
        """
        if not self.sql("SELECT id FROM ports LIMIT 1"):
            return
        req = urllib.request.Request(
            f"{self.url}/v2.0/ports?limit=1&fields=id", headers={"X-Roles": "admin"}
        )
        deadline = time.monotonic() + timeout
        while True:
            with urllib.request.urlopen(req, timeout=30) as r:
                if json.loads(r.read())["ports"]:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"neutron listed no port in {timeout:.0f} s: policy not loaded"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGKILL the whole session: the OVN threads keep it alive through SIGTERM."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        self.proc = None
        self.engine.dispose()


@contextlib.contextmanager
def running_ovn_server(db_url: str, workdir: Path, lab: OvnLab) -> Iterator[OvnNeutronServer]:
    dbfixtures.ensure_openstack_venv()
    server = OvnNeutronServer(db_url, workdir, lab)
    try:
        yield server.start()
    finally:
        server.stop()
