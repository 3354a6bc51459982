"""A private OVN: NB and SB ``ovsdb-server`` on unix sockets and a real ``ovn-northd``.

The databases are created from the schemas Debian's ``ovn-common`` ships
(``/usr/share/ovn/ovn-nb.ovsschema``, ``ovn-sb.ovsschema``) in a fresh folder
under /tmp (unix socket paths must stay under 108 bytes). Chassis are
registered as an operator's ``ovn-sbctl chassis-add`` does, and given the
``Chassis_Private`` row a running ``ovn-controller`` writes, so neutron's
AgentCache (and vifdoctor) see them as agents.

Used by ``vifdoctor demo --ovn`` and by the tests (tests/testkit/ovnlab.py wraps it in a
pytest fixture). Missing OVN tools raise :class:`OvnLabError` naming the Debian
packages (``.ci/run`` installs them for the tests).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from vifdoctor.errors import VifdoctorError

OVN_SCHEMA_DIR = Path("/usr/share/ovn")
NB_SCHEMA = OVN_SCHEMA_DIR / "ovn-nb.ovsschema"
SB_SCHEMA = OVN_SCHEMA_DIR / "ovn-sb.ovsschema"
TOOLS = ("ovsdb-tool", "ovsdb-server", "ovn-northd", "ovn-nbctl", "ovn-sbctl", "ovsdb-client")
APT_HINT = "on Debian: apt-get install -y ovn-central ovn-common ovn-host"

#: Seconds per step, for the terminal summary.
TIMINGS: dict[str, list[float]] = {}


class OvnLabError(VifdoctorError):
    """The lab could not be built or driven (not a vifdoctor finding): one line, exit 3."""


def missing_prerequisites() -> list[str]:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    missing += [str(s) for s in (NB_SCHEMA, SB_SCHEMA) if not s.is_file()]
    return missing


def _record(key: str, seconds: float) -> None:
    TIMINGS.setdefault(key, []).append(seconds)


def daemon_args(folder: Path, name: str, *, unixctl: bool = True) -> list[str]:
    """The options every lab daemon runs with (OVS's and OVN's alike): pid file, control
    socket and log in the lab's own folder, detached, quiet on the console.

    ``unixctl=False`` for ovn-controller, which has no ``--unixctl`` (it puts its
    control socket in ``OVN_RUNDIR``).
    """
    args = [f"--pidfile={folder / f'{name}.pid'}"]
    if unixctl:
        args.append(f"--unixctl={folder / f'{name}.ctl'}")
    return [*args, f"--log-file={folder / f'{name}.log'}", "--detach", "-vconsole:off"]


def daemon_pid(folder: Path, name: str) -> int | None:
    """The pid a lab daemon wrote with :func:`daemon_args`, or None."""
    try:
        return int((folder / f"{name}.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def stop_daemon(folder: Path, name: str, timeout: float = 5.0) -> bool:
    """SIGTERM (then SIGKILL) a daemon started with :func:`daemon_args` in ``folder``.

    False when it is not running, or when its pid now belongs to another process
    (whose command line does not name the lab's folder): never kill what is not ours.
    """
    pid = daemon_pid(folder, name)
    if pid is None:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    if str(folder) not in cmdline:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return True


class OvnLab:
    """NB + SB ovsdb-servers and ovn-northd in one private folder."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"vdovn-{secrets.token_hex(3)}-", dir="/tmp"))
        self.nb = f"unix:{self.dir / 'nb.sock'}"
        self.sb = f"unix:{self.dir / 'sb.sock'}"
        self.start_seconds: float | None = None
        self._encaps = 0
        self._live: set[str] = set()
        self.env = {
            **os.environ,
            "OVS_RUNDIR": str(self.dir),
            "OVS_LOGDIR": str(self.dir),
            "OVN_RUNDIR": str(self.dir),
            "OVN_LOGDIR": str(self.dir),
        }

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> OvnLab:
        missing = missing_prerequisites()
        if missing:
            raise OvnLabError(f"OVN lab prerequisites missing: {', '.join(missing)}; {APT_HINT}")
        t0 = time.monotonic()
        d = self.dir
        for name, schema, sock in (("nb", NB_SCHEMA, self.nb), ("sb", SB_SCHEMA, self.sb)):
            self._run(["ovsdb-tool", "create", str(d / f"{name}.db"), str(schema)])
            self._run(
                [
                    "ovsdb-server",
                    str(d / f"{name}.db"),
                    f"--remote=p{sock}",
                    *daemon_args(d, f"ovsdb-{name}"),
                ]
            )
        self._run(
            [
                "ovn-northd",
                f"--ovnnb-db={self.nb}",
                f"--ovnsb-db={self.sb}",
                *daemon_args(d, "ovn-northd"),
            ]
        )
        # NB_Global/SB_Global rows exist once northd has run a round: wait for it.
        self.nbctl("--wait=sb", "init")
        self.start_seconds = time.monotonic() - t0
        _record("OVN lab start (NB + SB ovsdb-server + ovn-northd, synced)", self.start_seconds)
        return self

    def stop(self) -> None:
        """Kill what this lab started (by its pid files); never raises."""
        for daemon in ("ovn-northd", "ovsdb-nb", "ovsdb-sb"):
            self._kill(daemon)
        if not os.environ.get("VIFDOCTOR_KEEP_LAB"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def _kill(self, daemon: str, timeout: float = 5.0) -> bool:
        return stop_daemon(self.dir, daemon, timeout)

    def kill_northd(self) -> None:
        """Stop ovn-northd (nb_cfg then stops reaching the SB and the chassis)."""
        self._kill("ovn-northd")

    # ------------------------------------------------------------------ commands

    def _run(
        self, argv: Sequence[str], *, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess:
        # The lab's own OVN/OVS tools with arguments it builds, never a shell: S603 checked.
        done = subprocess.run(  # noqa: S603
            list(argv),
            capture_output=True,
            text=True,
            env=self.env,  # noqa: S603
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise OvnLabError(
                f"{' '.join(argv)} exited {done.returncode}: "
                f"{(done.stderr or done.stdout).strip()[-2000:]}"
            )
        return done

    def nbctl(self, *args: str) -> str:
        return self._run(["ovn-nbctl", f"--db={self.nb}", "--timeout=20", *args]).stdout.strip()

    def sbctl(self, *args: str) -> str:
        return self._run(["ovn-sbctl", f"--db={self.sb}", "--timeout=20", *args]).stdout.strip()

    def nb_cfg(self) -> int:
        return int(self.nbctl("get", "NB_Global", ".", "nb_cfg"))

    def bump_nb_cfg(self) -> int:
        """What neutron's liveness check does: NB_Global.nb_cfg + 1, through to the SB; the
        live chassis answer it as their ovn-controller would."""
        self.nbctl("--wait=sb", "sync")
        cfg = self.nb_cfg()
        for name in sorted(self._live):
            self._report(name, cfg, int(time.time() * 1000))
        return cfg

    def _report(self, name: str, nb_cfg: int, stamp_ms: int) -> None:
        self.sbctl(
            "set", "Chassis_Private", name, f"nb_cfg={nb_cfg}", f"nb_cfg_timestamp={stamp_ms}"
        )

    # ------------------------------------------------------------------ chassis

    def add_chassis(
        self,
        name: str,
        hostname: str,
        *,
        encap_ip: str | None = None,
        alive: bool = True,
        other_config: dict[str, str] | None = None,
        private_external_ids: dict[str, str] | None = None,
        private: bool = True,
    ) -> str:
        """Register a chassis as ``ovn-sbctl chassis-add`` does, plus the row ovn-controller
        keeps (``Chassis_Private``) with ``nb_cfg`` caught up (alive) or far behind."""
        self._encaps += 1  # (type, ip) is unique in the SB
        self.sbctl("chassis-add", name, "geneve", encap_ip or f"192.0.2.{self._encaps}")
        self.sbctl("set", "Chassis", name, f"hostname={_q(hostname)}")
        if other_config:
            self.set_chassis_config(name, other_config)
        if private:
            uuid = self.sbctl("--bare", "--columns=_uuid", "find", "Chassis", f"name={_q(name)}")
            args = ["--id=@p", "create", "Chassis_Private", f"name={_q(name)}", f"chassis={uuid}"]
            if private_external_ids:
                args.append("external_ids=" + _ovsdb_map(private_external_ids))
            self.sbctl(*args)
            self.set_alive(name, alive)
        return name

    def set_chassis_config(self, name: str, other_config: dict[str, str]) -> None:
        for key, value in other_config.items():
            self.sbctl("set", "Chassis", name, f"other_config:{_q(key)}={_q(value)}")

    def set_alive(self, name: str, alive: bool) -> None:
        """Report ``nb_cfg`` as ovn-controller does: caught up (and kept so by
        :meth:`bump_nb_cfg`), or 5 rounds behind and an hour old: dead by AgentCache's rule."""
        if alive:
            self._live.add(name)
            self._report(name, self.nb_cfg(), int(time.time() * 1000))
            return
        self._live.discard(name)
        while self.nb_cfg() < 5:  # so that "behind" is more than the one round allowed
            self.bump_nb_cfg()
        self._report(name, self.nb_cfg() - 5, int(time.time() * 1000) - 3600 * 1000)

    def claim(
        self,
        port: str,
        chassis: str | None,
        *,
        additional: Sequence[str] = (),
        up: bool | None = None,
    ) -> None:
        """Set the SB Port_Binding's claim as an ovn-controller does (``lsp-bind``)."""
        uuid = self.wait_port_binding(port)
        if chassis is None:
            self.sbctl("clear", "Port_Binding", uuid, "chassis")
        else:
            ch = self.sbctl("--bare", "--columns=_uuid", "find", "Chassis", f"name={_q(chassis)}")
            self.sbctl("set", "Port_Binding", uuid, f"chassis={ch}")
        if additional:
            ids = [
                self.sbctl("--bare", "--columns=_uuid", "find", "Chassis", f"name={_q(c)}")
                for c in additional
            ]
            self.sbctl("set", "Port_Binding", uuid, f"additional_chassis=[{','.join(ids)}]")
        if up is not None:
            self.sbctl("set", "Port_Binding", uuid, f"up={'true' if up else 'false'}")

    def wait_port_binding(self, port: str, timeout: float = 10.0) -> str:
        """The SB Port_Binding uuid northd made for an LSP."""
        deadline = time.monotonic() + timeout
        while True:
            uuid = self.sbctl(
                "--bare", "--columns=_uuid", "find", "Port_Binding", f"logical_port={_q(port)}"
            )
            if uuid:
                return uuid.split()[0]
            if time.monotonic() > deadline:
                raise OvnLabError(f"northd made no Port_Binding for {port} in {timeout} s")
            time.sleep(0.05)

    def wait_lsp_up(self, port: str, up: bool, timeout: float = 10.0) -> None:
        """northd copies Port_Binding.up into the LSP's up: wait for it."""
        deadline = time.monotonic() + timeout
        want = "true" if up else "false"
        while self.nbctl("get", "Logical_Switch_Port", port, "up").strip("[]") != want:
            if time.monotonic() > deadline:
                raise OvnLabError(f"LSP {port} up is not {want} after {timeout} s")
            time.sleep(0.05)


def _gone(pid: int) -> bool:
    """Exited (a zombie counts: a detached daemon's reaper may be slow or absent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _q(text: str) -> str:
    """A value quoted for ovn-*ctl's database syntax (always a JSON string)."""
    return json.dumps(text)


def _ovsdb_map(values: dict[str, str]) -> str:
    return "{" + ",".join(f"{_q(k)}={_q(v)}" for k, v in values.items()) + "}"


@contextlib.contextmanager
def ovn_lab_running() -> Iterator[OvnLab]:
    lab = OvnLab()
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()
