"""Neutron's API as a source of bindings and agents, for operators without database access.

Same interface as :class:`vifdoctor.sources.neutron_db.NeutronDatabase`, so the
same rules judge what it yields. Read through openstacksdk (``--os-cloud`` or
the usual ``OS_*`` environment) with the admin view of the port's binding
attributes, paginated, filtered server-side where Neutron can (host, port,
network, project). What the API cannot show is said in :attr:`assumptions`:

* it parses ``vif_details``/``profile`` before showing them: text that does not
  parse is shown as ``{}`` (VD104 cannot be seen), and ``''`` cannot be told
  from ``'{}'`` (an empty object is handed to the rules as empty text, as the
  incident stored it);
* it parses agents' ``configurations`` the same way (VD111 cannot be seen);
* the driver of an INACTIVE binding is not shown (only the port's levels are).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import email.utils
import json
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

from vifdoctor.errors import VifdoctorError
from vifdoctor.model import Agent, Binding, Layout, parse_json_column
from vifdoctor.sources.database import scrub
from vifdoctor.sources.interface import EVERYTHING, Selectors

PAGE_SIZE = 1000
#: Per-port GET /ports/{id}/bindings run this many at a time (INACTIVE rows, Rocky+).
BINDING_WORKERS = 8
PORT_FIELDS = (
    "id",
    "network_id",
    "device_id",
    "device_owner",
    "project_id",
    "tenant_id",
    "status",
    "revision_number",
    "binding:host_id",
    "binding:vif_type",
    "binding:vif_details",
    "binding:vnic_type",
    "binding:profile",
)
#: The ports Neutron's bindings API serves (/ports/{id}/bindings): VM and Manila ports.
COMPUTE_OWNER, MANILA_OWNER = "compute:", "manila:"
SERVED_OWNERS = (COMPUTE_OWNER, MANILA_OWNER)
BOUND_DRIVERS = "bound_drivers"  # added to vif_details by ML2 when it shows a port
#: What the API cannot show (it parses the text first): the database path's only extra codes.
UNSEEN_CODES = frozenset({"VD104", "VD111"})

API_ASSUMPTIONS = (
    "API mode: Neutron shows vif_details, profile and agent configurations parsed; text "
    "that does not parse is shown as {} (VD104 and VD111 cannot be seen), and an empty "
    "object is taken as the empty text Neutron writes for an unbound port",
    "API mode: the driver of an INACTIVE binding is not shown by the API (driver left empty)",
    "API mode: Neutron's /ports/{id}/bindings fails (HTTP 500) on a port whose stored binding "
    "text does not parse; such ports are named on stderr and their INACTIVE bindings are "
    "not judged",
    "API mode: INACTIVE bindings are read for VM ports only (Neutron's bindings API serves "
    "no other ports)",
)


#: A connection a front end already authenticated (the openstack client's), used
#: instead of opening one from clouds.yaml: see :func:`given_connection`.
_GIVEN: contextvars.ContextVar[Any] = contextvars.ContextVar("vifdoctor_connection", default=None)


class _Borrowed:
    """A connection vifdoctor uses but does not own: closing it is left to its owner."""

    def __init__(self, conn: Any):
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def close(self) -> None:
        pass


@contextlib.contextmanager
def given_connection(conn: Any) -> Iterator[None]:
    """API mode reads (and repairs) through ``conn``, an openstacksdk Connection, meanwhile."""
    token = _GIVEN.set(conn)
    try:
        yield
    finally:
        _GIVEN.reset(token)


def connect_cloud(cloud: str | None) -> Any:
    """An openstacksdk connection for ``cloud`` (None: the OS_* environment / OS_CLOUD)."""
    if _GIVEN.get() is not None:
        return _Borrowed(_GIVEN.get())
    try:
        import openstack
        import openstack.config
    except ImportError:
        raise VifdoctorError("API mode needs openstacksdk: pip install 'vifdoctor[api]'") from None
    try:
        with _quiet_sdk():
            return openstack.connect(cloud=cloud, load_yaml_config=True, load_envvars=True)
    except Exception as exc:  # openstacksdk/keystoneauth raise many kinds; all mean the same
        raise api_error(exc, f"cloud {cloud!r}" if cloud else "the OS_* environment") from None


@contextlib.contextmanager
def _quiet_sdk() -> Iterator[None]:
    """openstacksdk warns on stderr about config quirks; keep the one-line-error promise."""
    import logging
    import warnings

    for name in ("keystoneauth", "openstack", "stevedore"):  # no log lines of theirs
        logging.getLogger(name).addHandler(logging.NullHandler())
        logging.getLogger(name).propagate = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def api_error(exc: BaseException, what: str = "Neutron API") -> VifdoctorError:
    """One line an operator can act on, with no token or password in it."""
    name = type(exc).__name__
    status = getattr(exc, "status_code", None) or getattr(
        getattr(exc, "response", None), "status_code", None
    )
    text = str(exc).splitlines()[0] if str(exc) else name
    if status:
        hint = {
            401: "the credentials were refused",
            403: "the account is not allowed",
            404: "not found",
        }.get(status, "")
        text = f"{hint} ({text})" if hint else text
        if not text.startswith("HTTP"):
            text = f"HTTP {status}: {text}"
    elif name in (
        "ConnectFailure",
        "ConnectTimeout",
        "DiscoveryFailure",
        "EndpointNotFound",
        "ConnectionError",
        "SSLError",
    ):
        text = f"cannot reach it ({text})"
    elif name in ("ConfigException", "OpenStackConfigException"):
        text = f"bad configuration ({text})"
    elif name in ("MissingAuthPlugin", "MissingRequiredOptions", "NoMatchingPlugin"):
        text = f"no usable credentials ({text})"
    return VifdoctorError(f"{what}: {scrub(text)[:300]}")


def _progress(desc: str, total: int | None = None) -> Any:
    """A tqdm bar on stderr (off when stderr is not a terminal)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="port", file=sys.stderr, disable=None, leave=False)


def _empty_as_text(value: Any) -> str:
    """The API's parsed column back as text; ``{}`` as '' (what Neutron stores unbound)."""
    if value is None or value == {}:
        return ""
    return json.dumps(value)


def bottom_driver(details: Any) -> str | None:
    """The deepest level's driver from ``bound_drivers`` (ML2 adds it when showing a port)."""
    levels = details.get(BOUND_DRIVERS) if isinstance(details, dict) else None
    if not isinstance(levels, dict) or not levels:
        return None
    try:
        return str(levels[max(levels, key=lambda k: int(k))])
    except (TypeError, ValueError):
        return None


def stored_details(details: Any) -> Any:
    """vif_details as the database holds them: without ML2's ``bound_drivers``."""
    if isinstance(details, dict) and BOUND_DRIVERS in details:
        return {k: v for k, v in details.items() if k != BOUND_DRIVERS}
    return details


class NeutronApi:
    """Bindings and agents read through Neutron's API (read-only)."""

    def __init__(
        self,
        conn: Any,
        *,
        cloud: str | None = None,
        page_size: int = PAGE_SIZE,
        workers: int = BINDING_WORKERS,
        progress: bool = True,
        inactive: bool = True,
    ):
        self.connection = conn
        self.cloud = cloud
        self.page_size = page_size
        self.workers = workers
        self.show_progress = progress
        self.read_inactive = inactive
        self.layout: Layout | None = None
        self.now: datetime.datetime | None = None
        self.extensions: set[str] = set()
        self.endpoint = ""
        self._cache: list[dict] | None = None
        self._cache_key: Selectors | None = None
        self._pending: _Pending | None = None  # a listing under way (prefetch_ports)
        self._last_time: datetime.datetime | None = None
        # Which VM ports' /bindings to GET for INACTIVE rows; None: every one.
        self.inactive_scope: Callable[[dict], bool] | None = None

    # -- lifecycle -------------------------------------------------------
    def open(self) -> NeutronApi:
        try:
            self.endpoint = str(self.connection.network.get_endpoint() or "")
        except Exception as exc:
            raise api_error(exc) from None
        response = self._get("/extensions?fields=alias")
        self.extensions = {e.get("alias") for e in response.json().get("extensions", [])}
        if "binding" not in self.extensions:
            raise VifdoctorError(
                "Neutron API: the 'binding' extension is not loaded: not an ML2 port-binding "
                "cloud vifdoctor can audit"
            )
        self.now = _server_time(response)
        has_status = "binding-extended" in self.extensions
        self.layout = Layout(
            name="api",
            description="Neutron API: binding:* port attributes"
            + (
                ", /ports/{id}/bindings for INACTIVE rows (Rocky+)"
                if has_status
                else " (no multiple bindings API: pre-Rocky)"
            ),
            bindings_table="/v2.0/ports",
            has_levels=True,
            has_status=has_status,
            project_column="project_id",
            segments_table=None,
        )
        return self

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.close()

    def __enter__(self) -> NeutronApi:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def assumptions(self) -> list[str]:
        skipped = (
            []
            if self.read_inactive
            else ["API mode: --skip-inactive-bindings: INACTIVE bindings were not read (no VD109)"]
        )
        return list(API_ASSUMPTIONS) + skipped

    def describe(self) -> dict:
        assert self.layout is not None
        return {
            "source": "neutron-api",
            "cloud": self.cloud or "(OS_* environment)",
            "endpoint": scrub(self.endpoint),
            "server_time_utc": self.now.isoformat(sep=" ") if self.now else None,
            "revision_if_match": "revision-if-match" in self.extensions,
            **self.layout.as_dict(),
        }

    # -- HTTP --------------------------------------------------------------
    def _get(self, path: str, *, ok404: bool = False) -> Any:
        """GET through the SDK's network proxy; any failure is one VifdoctorError."""
        try:
            response = self.connection.network.get(path, raise_exc=False)
        except Exception as exc:
            raise api_error(exc) from None
        self._last_time = _server_time(response) or self._last_time
        if ok404 and response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise api_error(_HttpFailure(response), f"Neutron API GET {path.split('?')[0]}")
        return response

    def _list(
        self,
        collection: str,
        fields: tuple[str, ...],
        filters: list[tuple[str, str]],
        bar: Any = None,
    ) -> Iterator[dict]:
        """Every item of a collection, page by page (limit + marker, sorted by id)."""
        query = (
            [("fields", f) for f in fields]
            + filters
            + [("limit", str(self.page_size)), ("sort_key", "id"), ("sort_dir", "asc")]
        )
        path = f"/{collection}?{urlencode(query)}"
        while path:
            body = self._get(path).json()
            items = body.get(collection, [])
            yield from items
            if bar is not None:
                bar.update(len(items))
            path = ""
            for link in body.get(f"{collection}_links", []):
                if link.get("rel") == "next" and items:
                    href = link["href"]
                    path = href[href.index(f"/{collection}") :] if f"/{collection}" in href else ""
            if len(items) < self.page_size:
                path = ""

    # -- agents ----------------------------------------------------------
    def agents(self, down_time: float) -> dict[str, list[Agent]]:
        """Every agent by host; alive = heartbeat within ``down_time`` of the server's clock."""
        if "agent" not in self.extensions:
            return {}
        # One plain GET: agents are few, and ML2/OVN's synthesized agents refuse sorting
        # and paging (HTTP 400 "['id'] is invalid attribute for sort_keys").
        items = self._get("/agents").json().get("agents", [])
        self.now = self._last_time or self.now  # the clock as the agents were read
        by_host: dict[str, list[Agent]] = {}
        limit = self.now - datetime.timedelta(seconds=down_time) if self.now else None
        for item in items:
            raw_value = item.get("configurations")
            raw = "" if raw_value is None else json.dumps(raw_value)
            parsed = parse_json_column(raw)
            beat = _parse_time(item.get("heartbeat_timestamp"))
            ovn = (item.get("agent_type") or "").startswith("OVN ")
            if limit is not None and beat is not None and not ovn:
                alive = beat >= limit
            else:  # no clock to measure against, or OVN's AgentCache (nb_cfg): the server's
                alive = bool(item.get("alive"))
            agent = Agent(
                id=str(item.get("id")),
                agent_type=item.get("agent_type") or "",
                host=item.get("host") or "",
                alive=alive,
                admin_state_up=bool(item.get("admin_state_up")),
                configurations=parsed.as_dict(),
                heartbeat_timestamp=beat,
                configurations_error=parsed.error,
                configurations_raw=raw,
            )
            by_host.setdefault(agent.host, []).append(agent)
        return by_host

    def network_segments(self) -> dict[str, tuple[str, str | None]]:
        """Network id -> (network type, physical network) of single-segment networks."""
        fields = ("id", "provider:network_type", "provider:physical_network")
        found: dict[str, tuple[str, str | None]] = {}
        for net in self._list("networks", fields, []):
            if net.get("provider:network_type"):
                found[str(net["id"])] = (
                    net["provider:network_type"],
                    net.get("provider:physical_network"),
                )
        return found

    # -- ports -----------------------------------------------------------
    def _filters(self, selectors: Selectors) -> list[tuple[str, str]]:
        out = [("binding:host_id", h) for h in selectors.hosts]
        out += [("id", p) for p in selectors.ports]
        out += [("network_id", n) for n in selectors.networks]
        out += [("project_id", p) for p in selectors.projects]
        return out

    def prefetch_ports(self, selectors: Selectors = EVERYTHING) -> None:
        """List these ports in the background; :meth:`ports` then waits for the listing.

        API mode reads Nova's servers meanwhile (issue 14): each API server is busy with
        its own listing at the same time instead of one after the other. A daemon thread:
        a run that fails elsewhere does not wait for it to end.
        """
        if self._pending is not None or (self._cache is not None and self._cache_key == selectors):
            return
        pending = _Pending(selectors)

        def read() -> None:
            try:
                pending.ports = self._read_ports(selectors)
            except BaseException as exc:  # handed to the caller of ports(), re-raised there
                pending.error = exc
            finally:
                pending.done.set()

        self._pending = pending
        threading.Thread(target=read, name="vifdoctor-ports", daemon=True).start()

    def ports(self, selectors: Selectors = EVERYTHING) -> list[dict]:
        """The selected ports with their binding attributes (one listing, then reused)."""
        if self._cache is not None and self._cache_key == selectors:
            return self._cache
        pending, self._pending = self._pending, None
        if pending is not None and pending.selectors == selectors:
            pending.done.wait()
            if pending.error is not None:
                raise pending.error
            ports = pending.ports
        else:
            ports = self._read_ports(selectors)
        self._cache, self._cache_key = ports, selectors
        return ports

    def _read_ports(self, selectors: Selectors) -> list[dict]:
        """One listing of the selected ports, checked for their binding attributes."""
        bar = _progress("ports (API)") if self.show_progress else None
        try:
            ports = list(self._list("ports", PORT_FIELDS, self._filters(selectors), bar))
        finally:
            if bar is not None:
                bar.close()
        if ports and "binding:vif_type" not in ports[0] and "binding:host_id" not in ports[0]:
            raise VifdoctorError(
                "Neutron API: the ports come without their binding:* attributes: the account "
                "needs the admin role (policy get_port:binding:*)"
            )
        return ports

    def _binding(self, port: dict) -> Binding | None:
        if port.get("binding:vif_type") is None:
            return None  # no ACTIVE binding (only an INACTIVE one, or none at all)
        details = port.get("binding:vif_details")
        return Binding(
            port_id=port["id"],
            host=port.get("binding:host_id") or "",
            vif_type=port.get("binding:vif_type") or "",
            vif_details=_empty_as_text(stored_details(details)),
            vnic_type=port.get("binding:vnic_type") or "normal",
            profile=_empty_as_text(port.get("binding:profile")),
            status="ACTIVE" if self.layout and self.layout.has_status else None,
            driver=bottom_driver(details),
            segment=None,
            device_owner=port.get("device_owner") or "",
            device_id=port.get("device_id") or "",
            network_id=port.get("network_id") or "",
            project_id=port.get("project_id") or port.get("tenant_id") or "",
            port_status=port.get("status") or "",
        )

    def port_bindings(self, port_id: str) -> list[dict]:
        """Every binding of one port (Rocky+ ``/ports/{id}/bindings``): ACTIVE and INACTIVE."""
        response = self._get(f"/ports/{port_id}/bindings", ok404=True)
        return [] if response is None else response.json().get("bindings", [])

    def _port_bindings_or_none(self, port_id: str) -> list[dict] | None:
        """As :meth:`port_bindings`; None where Neutron fails on the port's stored text."""
        try:
            response = self.connection.network.get(f"/ports/{port_id}/bindings", raise_exc=False)
        except Exception as exc:
            raise api_error(exc) from None
        if response.status_code >= 500:
            return None
        if response.status_code in (400, 404):  # 400: not a port the bindings API serves
            return []
        if response.status_code >= 400:
            raise api_error(_HttpFailure(response), "Neutron API GET /ports/{id}/bindings")
        return response.json().get("bindings", [])

    def _inactive(
        self, ports: list[dict], hosts: tuple[str, ...], owners: tuple[str, ...] = SERVED_OWNERS
    ) -> Iterator[Binding]:
        """INACTIVE rows, fetched per port a few at a time (the API has no bulk call), of
        the ports whose device_owner starts with one of ``owners``."""
        if not (self.layout and self.layout.has_status) or not self.read_inactive:
            return
        # The bindings API serves only VM (and shared filesystem) ports: ask for those.
        ports = [p for p in ports if (p.get("device_owner") or "").startswith(owners)]
        if self.inactive_scope is not None:
            ports = [p for p in ports if self.inactive_scope(p)]
        if not ports:
            return
        bar = _progress("bindings (API)", len(ports)) if self.show_progress else None
        unreadable: list[str] = []
        try:
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                rows_each = pool.map(lambda p: self._port_bindings_or_none(p["id"]), ports)
                for port, rows in zip(ports, rows_each, strict=True):
                    if bar is not None:
                        bar.update(1)
                    if rows is None:
                        unreadable.append(port["id"])
                        continue
                    has_active = any(r.get("status") == "ACTIVE" for r in rows)
                    for row in rows:
                        if row.get("status") == "ACTIVE":
                            continue
                        if hosts and row.get("host") not in hosts:
                            continue
                        yield Binding(
                            port_id=port["id"],
                            host=row.get("host") or "",
                            vif_type=row.get("vif_type") or "",
                            vif_details=_empty_as_text(row.get("vif_details")),
                            vnic_type=row.get("vnic_type") or "normal",
                            profile=_empty_as_text(row.get("profile")),
                            status=row.get("status"),
                            driver=None,
                            device_owner=port.get("device_owner") or "",
                            device_id=port.get("device_id") or "",
                            network_id=port.get("network_id") or "",
                            project_id=port.get("project_id") or port.get("tenant_id") or "",
                            has_active_row=has_active,
                        )
        finally:
            if bar is not None:
                bar.close()
        if unreadable:
            print(
                f"vifdoctor: warning: Neutron fails (HTTP 500) to show the bindings of "
                f"{len(unreadable)} port(s), whose stored binding text does not parse; their "
                f"INACTIVE bindings are not judged: {' '.join(unreadable[:20])}",
                file=sys.stderr,
            )

    def _inactive_candidates(self, selectors: Selectors) -> list[dict]:
        """Ports whose INACTIVE bindings may be selected: with --host, any port at all."""
        if not selectors.hosts:
            return self.ports(selectors)
        wide = Selectors((), selectors.ports, selectors.networks, selectors.projects)
        return self.ports(wide)

    def bindings(self, selectors: Selectors = EVERYTHING) -> Iterator[Binding]:
        """The live bindings, then the inactive ones (the database path's order)."""
        for port in self.ports(selectors):
            b = self._binding(port)
            if b is not None:
                yield b
        yield from self._inactive(self._inactive_candidates(selectors), selectors.hosts)

    def repair_candidates(
        self, selectors: Selectors = EVERYTHING, vif_types: frozenset[str] = frozenset()
    ) -> Iterator[Binding]:
        """The live bindings (of these vif_types, when given): a repair writes no other."""
        for port in self.ports(selectors):
            b = self._binding(port)
            if b is not None and (not vif_types or b.vif_type in vif_types):
                yield b

    def other_bindings(self, selectors: Selectors = EVERYTHING) -> Iterator[Binding]:
        """Live bindings of ports that are not VM ports, then their inactive bindings."""
        for port in self.ports(selectors):
            b = self._binding(port)
            if b is not None and not b.is_compute_port:
                yield b
        # only the non-VM ports' GETs: the VM ports' are compute_bindings_by_device's
        yield from self._inactive(
            self._inactive_candidates(selectors), selectors.hosts, (MANILA_OWNER,)
        )

    def compute_bindings_by_device(
        self,
        selectors: Selectors = EVERYTHING,
        read_ahead: bool = False,  # noqa: ARG002 - the API's pages are read as they come
    ) -> Iterator[Binding]:
        """VM ports' bindings, live and INACTIVE, in device_id order (code point = UTF-8
        byte order): an INACTIVE row is judged with its instance's moves."""
        found = [
            b
            for b in map(self._binding, self.ports(selectors))
            if b is not None and b.is_compute_port
        ]
        found += self._inactive(
            self._inactive_candidates(selectors), selectors.hosts, (COMPUTE_OWNER,)
        )
        found.sort(key=lambda b: (b.device_id, b.port_id, b.status != "ACTIVE"))
        yield from found

    def bound_hosts(self, port_ids: list[str]) -> dict[str, str]:
        """The host each of these ports is bound to (its live binding), for the host join."""
        found: dict[str, str] = {}
        for start in range(0, len(port_ids), 100):
            query = [("fields", "id"), ("fields", "binding:host_id")] + [
                ("id", p) for p in port_ids[start : start + 100]
            ]
            for port in self._get(f"/ports?{urlencode(query)}").json().get("ports", []):
                found[port["id"]] = port.get("binding:host_id") or ""
        return found


def inactive_possible(port: dict, moved: set[str], nova_hosts: dict[str, str]) -> bool:
    """Whether a port (as the API lists it) can hold an INACTIVE binding.

    Neutron keeps an INACTIVE binding only while Nova live-migrates the port's
    instance (it creates one on the destination, activates it, deletes the old
    one), and a failed or interrupted move leaves it behind. So: the ports of
    instances that Nova's os-migrations shows moved, ports whose binding:profile
    still names a ``migrating_to`` host, and ports bound to a host other than the
    one Nova has (or whose instance Nova does not list).
    """
    profile = port.get("binding:profile")
    if isinstance(profile, dict) and profile.get("migrating_to"):
        return True
    device = port.get("device_id") or ""
    if device in moved:
        return True
    return nova_hosts.get(device) != (port.get("binding:host_id") or "")


class _Pending:
    """A ports listing running in the background, and what it gave."""

    def __init__(self, selectors: Selectors):
        self.selectors = selectors
        self.done = threading.Event()
        self.ports: list[dict] = []
        self.error: BaseException | None = None


class _HttpFailure(Exception):
    """A non-2xx answer, carrying its status for :func:`api_error`."""

    def __init__(self, response: Any):
        self.status_code = response.status_code
        message = ""
        with contextlib.suppress(Exception):
            body = response.json()
            inner = body.get("NeutronError", body) if isinstance(body, dict) else {}
            message = inner.get("message", "") if isinstance(inner, dict) else ""
        super().__init__(f"HTTP {response.status_code}" + (f": {message}" if message else ""))


def _server_time(response: Any) -> datetime.datetime | None:
    """The API server's UTC clock from the HTTP Date header (agents are judged against it)."""
    value = getattr(response, "headers", {}).get("Date")
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed.astimezone(datetime.timezone.utc).replace(tzinfo=None)


def _parse_time(value: Any) -> datetime.datetime | None:
    """Neutron shows heartbeats as naive UTC 'YYYY-MM-DD HH:MM:SS'."""
    if not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return parsed
