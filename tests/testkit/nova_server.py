"""A real nova 34.0.0 compute API server for the API-mode Nova tests, on MariaDB.

nova's ``osapi_compute`` paste app (``nova.api.openstack.wsgi_app.init_application``,
what ``nova/wsgi/osapi_compute.py`` serves) runs under gunicorn from
``.cache/nova-venv`` on 127.0.0.1, with its api and cell databases built from the
cached nova 34.0.0 DDL and ``transport_url = fake:/``.

nova 34.0.0 no longer ships the ``noauth2`` middleware nor ``[api] auth_strategy``:
its pipelines are keystone-only (``... authtoken keystonecontext ...``). The paste
file written here is the shipped ``api-paste.ini`` with ``authtoken`` (the
keystonemiddleware token check) replaced by :class:`vd_nova_wsgi.NoAuth`, which
only fills the headers keystonemiddleware would set for an admin token when a
request has none. Everything after it (``NovaKeystoneContext``, policy, the
compute API, its database queries) is nova's own.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from testkit import dbfixtures
from testkit.cells import CellMappingSpec, write_cell_mappings
from testkit.neutron_server import _free_port, _rss_mb, start_gunicorn, stop_gunicorn
from vifdoctor.demo.nova import InstanceSpec, write_instances

GUNICORN = dbfixtures.NOVA_VENV / "bin" / "gunicorn"
SHIPPED_PASTE = dbfixtures.NOVA_VENV / "etc" / "nova" / "api-paste.ini"
READY_TIMEOUT = 90.0
CELL1_UUID = "7b6a2f4e-1c3d-4e5f-8a9b-0c1d2e3f4a5b"
PROJECT = "6e0d5c1b2a394857a6b5c4d3e2f10a9b"
USER = "admin-user"
#: ``instance_extra.flavor`` as nova stores it (``Flavor`` 1.2 primitive): the server
#: views load it for every server, so an instance without it is a 500 on listing.
FLAVOR_JSON = json.dumps(
    {
        "cur": {
            "nova_object.name": "Flavor",
            "nova_object.namespace": "nova",
            "nova_object.version": "1.2",
            "nova_object.changes": [],
            "nova_object.data": {
                "id": 1,
                "name": "m1.small",
                "memory_mb": 2048,
                "vcpus": 1,
                "root_gb": 20,
                "ephemeral_gb": 0,
                "flavorid": "2",
                "swap": 0,
                "rxtx_factor": 1.0,
                "vcpu_weight": 0,
                "disabled": False,
                "is_public": True,
                "extra_specs": {},
                "description": None,
            },
        },
        "old": None,
        "new": None,
    }
)

NOVA_CONF = """[DEFAULT]
transport_url = fake:/
host = vd-nova-api
state_path = {workdir}
debug = false
use_stderr = true
log_options = false

[api_database]
connection = {api_url}

[database]
connection = {cell_url}

[neutron]
auth_type = none
endpoint_override = {neutron_url}

[oslo_concurrency]
lock_path = {workdir}/lock

[oslo_policy]
enforce_scope = true
enforce_new_defaults = true
"""

# gunicorn's own argv must not reach nova's oslo.config; the filter stands in for
# keystonemiddleware's auth_token (see the module docstring).
WSGI_MODULE = """import os
import sys

sys.argv = ["nova-api"]
os.environ["OS_NOVA_CONFIG_DIR"] = {workdir!r}


class NoAuth:
    HEADERS = {{"HTTP_X_USER_ID": {user!r}, "HTTP_X_PROJECT_ID": {project!r},
               "HTTP_X_ROLES": "admin,member,reader", "HTTP_X_IDENTITY_STATUS": "Confirmed"}}

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        for key, value in self.HEADERS.items():
            environ.setdefault(key, value)
        return self.app(environ, start_response)

    @classmethod
    def factory(cls, global_conf, **local_conf):
        return cls


from nova.api.openstack import wsgi_app  # noqa: E402

application = wsgi_app.init_application("osapi_compute", "nova-api")
"""


def paste_ini() -> str:
    """The shipped api-paste.ini, ``authtoken`` swapped for the header-filling filter."""
    text = SHIPPED_PASTE.read_text()
    if " authtoken keystonecontext " not in text:
        pytest.fail(f"{SHIPPED_PASTE}: no 'authtoken keystonecontext' pipeline to adapt")
    text = text.replace(" authtoken keystonecontext ", " vdnoauth keystonecontext ")
    return text + "\n[filter:vdnoauth]\npaste.filter_factory = vd_nova_wsgi:NoAuth.factory\n"


class NovaServer:
    """One running compute API: URL, its two databases, and a way to add servers."""

    def __init__(self, api_url: str, cell_url: str, neutron_url: str, workdir: Path):
        self.neutron_url = neutron_url
        self.api_url = api_url
        self.cell_url = cell_url
        self.workdir = workdir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "nova-api.log"
        self.api_engine = sa.create_engine(api_url)
        self.cell_engine = sa.create_engine(cell_url)
        self.start_seconds = 0.0
        self.rss_mb = 0.0

    def start(self) -> NovaServer:
        (self.workdir / "lock").mkdir(exist_ok=True)
        (self.workdir / "nova.conf").write_text(
            NOVA_CONF.format(
                workdir=self.workdir,
                api_url=self.api_url,
                cell_url=self.cell_url,
                neutron_url=self.neutron_url,
            )
        )
        (self.workdir / "api-paste.ini").write_text(paste_ini())
        (self.workdir / "vd_nova_wsgi.py").write_text(
            WSGI_MODULE.format(workdir=str(self.workdir), user=USER, project=PROJECT)
        )
        write_cell_mappings(
            self.api_engine,
            [
                CellMappingSpec(
                    uuid=CELL1_UUID,
                    name="cell1",
                    database_connection=self.cell_url,
                    transport_url="fake:/",
                )
            ],
        )
        self.proc, self.start_seconds = start_gunicorn(
            GUNICORN,
            self.workdir,
            "vd_nova_wsgi",
            self.port,
            self.log,
            f"{self.url}/v2.1/",
            "nova API server",
            READY_TIMEOUT,
        )
        self.rss_mb = _rss_mb(self.proc.pid)
        dbfixtures._record("nova 34.0.0 API server start (gunicorn)", self.start_seconds)
        return self

    def stop(self) -> None:
        stop_gunicorn(self.proc)
        self.proc = None
        self.api_engine.dispose()
        self.cell_engine.dispose()

    def add_clouds_entry(self, clouds_yaml: Path) -> None:
        """Point the (neutron) test cloud's compute service at this server."""
        text = clouds_yaml.read_text().rstrip("\n") + "\n"
        clouds_yaml.write_text(text + f"    compute_endpoint_override: {self.url}/v2.1/\n")

    def add_servers(self, specs: list[InstanceSpec]) -> None:
        """Instances (cell rows) and their instance_mappings (api rows) as nova keeps them."""
        for spec in specs:
            spec.project_id = spec.project_id or PROJECT
            spec.user_id = spec.user_id or USER
        write_instances(self.cell_engine, specs)
        with self.cell_engine.begin() as c:
            for spec in specs:
                c.execute(
                    sa.text(
                        "INSERT INTO instance_extra (created_at, deleted, instance_uuid, flavor) "
                        "VALUES (UTC_TIMESTAMP(), 0, :u, :f)"
                    ),
                    {"u": spec.uuid, "f": FLAVOR_JSON},
                )
        with self.api_engine.begin() as c:
            cell_id = c.execute(
                sa.text("SELECT id FROM cell_mappings WHERE uuid = :u"), {"u": CELL1_UUID}
            ).scalar_one()
            for spec in specs:
                c.execute(
                    sa.text(
                        "INSERT INTO instance_mappings (created_at, instance_uuid, cell_id, "
                        "project_id, user_id, queued_for_delete) VALUES (UTC_TIMESTAMP(), :u, :c, "
                        ":p, :usr, :q)"
                    ),
                    {
                        "u": spec.uuid,
                        "c": cell_id,
                        "p": spec.project_id,
                        "usr": spec.user_id,
                        "q": spec.deleted,
                    },
                )


@contextlib.contextmanager
def running_server(
    api_url: str, cell_url: str, neutron_url: str, workdir: Path
) -> Iterator[NovaServer]:
    """Start the compute API on migrated nova 34.0.0 databases; always stop it.

    Listing servers asks Neutron for their security groups: ``neutron_url`` is the
    (noauth) neutron API nova's ``[neutron]`` client calls.
    """
    dbfixtures.ensure_nova_venv()  # adds gunicorn to an older venv in place
    workdir.mkdir(parents=True, exist_ok=True)
    server = NovaServer(api_url, cell_url, neutron_url, workdir)
    try:
        yield server.start()
    finally:
        server.stop()
