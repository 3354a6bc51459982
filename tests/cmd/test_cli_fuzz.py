"""CLI-level fuzzing: every command driven with generated hostile values (issue 13).

Each test builds what an attacker (a tenant setting a port's device_id) or a careless
operator (a hand-edited backup, a wrong config file) can produce, runs the real
command line, and asserts the standing invariants:

* no traceback and no "internal error": exit codes 0/1/2, or 3 with one clear line;
* strict JSON from ``-f json``; nothing but inert text in tables;
* no password in any output;
* ``plan --sql`` fed to ``sqlite3`` == ``repair --apply``, byte for byte;
* every printed command splits (shlex) into the words meant, ids are UUIDs;
* ``rollback --apply`` restores the database byte for byte.

Examples per test: ``VIFDOCTOR_FUZZ_EXAMPLES`` (default 20, the quick CI profile;
the nightly run sets e.g. 500). docs/testing.md records what each ran.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import string
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testkit.cloudfactory import run_cli
from testkit.hostilekit import DEVICE_IDS, HOSTS, dump, run_client
from testkit.repairkit import install, install_demo, network

from vifdoctor.demo.builder import AgentSpec, BindingSpec, CloudSpec, PortSpec
from vifdoctor.demo.nova import InstanceSpec, create_nova_schema, write_instances

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z", re.I)
EXAMPLES = int(os.environ.get("VIFDOCTOR_FUZZ_EXAMPLES", "20"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
FORMATS = ("table", "json", "yaml", "csv", "value", "html")

# ------------------------------------------------------------------ strategies

# Any character SQLite and UTF-8 can hold (no lone surrogates), weighted to the nasty ones.
NASTY = "\n\r\t\x00\x1b\x07\x7f'\"\\%$`;|&<>(){}[]#*?~! -_.:@/=,\u202e\u200b\u2028é𝄞"
TEXT = st.text(
    alphabet=st.sampled_from(NASTY) | st.characters(blacklist_categories=("Cs",)), max_size=24
)
HOSTILE = TEXT | st.sampled_from(HOSTS + DEVICE_IDS)
UUIDS = st.uuids().map(str)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
JSON_VALUES = st.recursive(
    SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(TEXT, c, max_size=3), max_leaves=8
)
DETAIL_KEYS = (
    st.sampled_from(
        ["port_filter", "ovs_hybrid_plug", "datapath_type", "bridge_name", "connectivity"]
    )
    | TEXT
)


@st.composite
def details_text(draw) -> str:
    """vif_details as stored: usually a JSON object in any spacing, sometimes any text."""
    if draw(st.integers(0, 5)) == 0:
        return draw(TEXT)
    obj = draw(st.dictionaries(DETAIL_KEYS, JSON_VALUES, max_size=4))
    sep = draw(st.sampled_from([(", ", ": "), (",", ":"), (",\n\t", " :  ")]))
    return json.dumps(obj, separators=sep, ensure_ascii=draw(st.booleans()))


@st.composite
def hostile_clouds(draw) -> CloudSpec:
    hosts = draw(st.lists(HOSTILE, min_size=1, max_size=3, unique=True))
    count = draw(st.integers(1, 5))
    ids = draw(
        st.lists(
            TEXT.filter(lambda t: 0 < len(t) <= 36) | UUIDS,
            min_size=count,
            max_size=count,
            unique=True,
        )
    )
    ports = []
    for port_id in ids:
        ports.append(
            PortSpec(
                id=port_id,
                network_id=network().id,
                device_owner="compute:nova",
                device_id=draw(HOSTILE | UUIDS),
                project_id="p",
                binding=BindingSpec(
                    host=draw(st.sampled_from(hosts)),
                    vif_type="ovs",
                    vif_details=draw(details_text()),
                    profile=draw(st.just("") | TEXT),
                    segment_id=network().segments[0].id,
                ),
            )
        )
    agents = [
        AgentSpec(
            host=h,
            agent_type="Open vSwitch agent",
            configurations=draw(
                st.just({"bridge_mappings": {}}) | TEXT | JSON_VALUES.map(json.dumps)
            ),
        )
        for h in hosts
    ]
    return CloudSpec(networks=[network()], agents=agents, ports=ports)


# ------------------------------------------------------------------ invariants


def _runs_cleanly(code: int, err: str, allowed=(0, 1, 2)) -> None:
    assert "Traceback" not in err and "internal error" not in err, err
    assert code in allowed, (code, err)
    if code == 3:
        assert len(err.strip().splitlines()) == 1, err


def _no_constant(name: str):
    raise AssertionError(f"non-strict JSON: {name}")


_BLOB_OPEN = '<script id="vd-data" type="application/json">'


def _check_html(page: str) -> None:
    """Data never becomes markup: the template's two script elements and no other, and
    the data blob is strict JSON (what the page's JSON.parse accepts)."""
    assert page.lower().count("<script") == 2 and page.lower().count("</script") == 2
    start = page.index(_BLOB_OPEN) + len(_BLOB_OPEN)
    json.loads(page[start : page.index("</script>", start)], parse_constant=_no_constant)


def _check_commands(out: str) -> None:
    """Every printed command parses as the words meant; ids in them are UUIDs."""
    for line in out.splitlines():
        text = line.strip()
        if not text.startswith(("openstack ", "nova ")):
            continue
        words = shlex.split(text, comments=True)
        if words[:4] == ["openstack", "server", "reboot", "--hard"]:
            assert len(words) == 5 and UUID.match(words[4]), text
    for ch in "\x1b\x07\r\x00":
        assert ch not in out


@pytest.mark.parametrize("layout", ["icehouse", "ocata"])
@FUZZ
@given(cloud=hostile_clouds())
def test_every_command_on_a_hostile_cloud(layout, cloud):
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp, "a.sqlite"), Path(tmp, "b.sqlite")
        url_a, url_b = f"sqlite:///{a}", f"sqlite:///{b}"
        install(url_a, cloud, layout)
        shutil.copy(a, b)
        before = dump(url_a)
        for fmt in FORMATS:
            code, out, err = run_cli(["audit", "--neutron-db", url_a, "-f", fmt], debug=False)
            _runs_cleanly(code, err)
            if fmt == "json":
                json.loads(out, parse_constant=_no_constant)
            if fmt == "table":
                _check_commands(out)
            if fmt == "html":
                _check_html(out)
        code, out, err = run_cli(["plan", "--neutron-db", url_a], debug=False)
        _runs_cleanly(code, err)
        _check_commands(out)
        code, script, err = run_cli(["plan", "--neutron-db", url_a, "--sql"], debug=False)
        _runs_cleanly(code, err, (0,))
        run_client(url_a, script)
        code, out, err = run_cli(
            ["repair", "--neutron-db", url_b, "--apply", "--backup-dir", str(Path(tmp, "bk"))],
            debug=False,
        )
        _runs_cleanly(code, err, (0,))
        _check_commands(out)
        assert dump(url_a) == dump(url_b)  # --sql == --apply
        backups = sorted(Path(tmp, "bk").glob("*.json"))
        for backup in backups:
            code, out, err = run_cli(
                [
                    "rollback",
                    str(backup),
                    "--neutron-db",
                    url_b,
                    "--apply",
                    "--backup-dir",
                    str(Path(tmp, "rb")),
                ],
                debug=False,
            )
            _runs_cleanly(code, err, (0,))
        assert dump(url_b) == before  # rollback byte-exact


@st.composite
def nova_views(draw) -> tuple[CloudSpec, list[InstanceSpec]]:
    cloud = draw(hostile_clouds())
    instances = []
    for port in cloud.ports:
        if draw(st.booleans()):
            cache = draw(
                st.none()
                | TEXT
                | JSON_VALUES.map(json.dumps)
                | st.just(json.dumps([{"id": port.id, "details": {"x": "\ud800"}, "type": "ovs"}]))
            )
            instances.append(
                InstanceSpec(
                    uuid=port.device_id[:36],
                    host=draw(HOSTILE),
                    vm_state=draw(TEXT),
                    power_state=draw(st.sampled_from([1, 4, 0])),
                    network_info=cache,
                )
            )
    unique = {i.uuid: i for i in instances}
    return cloud, list(unique.values())


@FUZZ
@given(view=nova_views())
def test_audit_and_remediation_with_hostile_nova_caches(view):
    cloud, instances = view
    with tempfile.TemporaryDirectory() as tmp:
        neutron, nova = f"sqlite:///{tmp}/n.sqlite", f"sqlite:///{tmp}/nova.sqlite"
        install(neutron, cloud, "ocata")
        import sqlalchemy as sa

        engine = sa.create_engine(nova)
        try:
            create_nova_schema(engine)
            write_instances(engine, instances)
        finally:
            engine.dispose()
        for command in ("audit", "remediation"):
            for fmt in FORMATS:
                code, out, err = run_cli(
                    [command, "--neutron-db", neutron, "--nova-db", nova, "-f", fmt], debug=False
                )
                _runs_cleanly(code, err)
                if fmt == "json":
                    doc = json.loads(out, parse_constant=_no_constant)
                    for step in doc.get("steps", []):
                        if step["command"] and step["action"] != "repair-binding":
                            words = shlex.split(step["command"], comments=True)
                            assert any(UUID.match(w) for w in words), step
                if fmt == "table":
                    _check_commands(out)
                if fmt == "html":
                    _check_html(out)


# ------------------------------------------------------------------ host reports

REPORT = st.fixed_dictionaries(
    {"format": st.just("vifdoctor-host-scan"), "format_version": st.just(1)},
    optional={
        k: JSON_VALUES
        | st.lists(
            st.dictionaries(
                TEXT
                | st.sampled_from(
                    ["name", "ports", "interfaces", "external_ids", "target_dev", "state", "ok"]
                ),
                JSON_VALUES,
                max_size=4,
            ),
            max_size=3,
        )
        for k in ("host", "sources", "errors", "domains", "ovs_bridges", "links", "iptables_chains")
    },
)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'demo.sqlite'}"
    install_demo(url)
    return url


@FUZZ
@given(reports=st.lists(REPORT, min_size=1, max_size=3))
def test_hostile_host_reports(demo_db, reports):
    with tempfile.TemporaryDirectory() as tmp:
        for n, report in enumerate(reports):
            Path(tmp, f"r{n}.json").write_text(json.dumps(report))
        for fmt in ("json", "table"):
            code, out, err = run_cli(
                ["audit", "--neutron-db", demo_db, "--host-reports", tmp, "-f", fmt], debug=False
            )
            _runs_cleanly(code, err)


# ------------------------------------------------------------------ backups


def _reseal(body: dict) -> None:
    body.pop("checksum", None)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    body["checksum"] = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


@pytest.fixture(scope="module")
def repaired(tmp_path_factory) -> tuple[Path, Path]:
    """A repaired demo database and the backup of that repair."""
    folder = tmp_path_factory.mktemp("fuzz-backup")
    url = f"sqlite:///{folder / 'demo.sqlite'}"
    install_demo(url)
    code, out, err = run_cli(
        ["repair", "--neutron-db", url, "--apply", "--backup-dir", str(folder / "bk")]
    )
    assert code == 0, err
    [backup] = sorted((folder / "bk").glob("*.json"))
    return folder / "demo.sqlite", backup


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


@FUZZ
@given(data=st.data())
def test_tampered_backups(repaired, data):
    db, backup = repaired
    body = json.loads(backup.read_text())
    paths = [p for p in _paths(body) if p and p[0] != "checksum"]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        target = body
        try:
            for step in path[:-1]:
                target = target[step]
            if data.draw(st.booleans()) and isinstance(target, dict):
                target.pop(path[-1], None)
            else:
                target[path[-1]] = data.draw(JSON_VALUES)
        except (KeyError, IndexError, TypeError):
            continue
    _reseal(body)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp, "db.sqlite")
        shutil.copy(db, copy)
        url = f"sqlite:///{copy}"
        before = dump(url)
        mutated = Path(tmp, "backup.json")
        mutated.write_text(json.dumps(body))
        code, out, err = run_cli(["rollback", str(mutated), "--neutron-db", url], debug=False)
        _runs_cleanly(code, err, (0, 3))
        code, out, err = run_cli(
            [
                "rollback",
                str(mutated),
                "--neutron-db",
                url,
                "--apply",
                "--backup-dir",
                str(Path(tmp, "rb")),
            ],
            debug=False,
        )
        _runs_cleanly(code, err, (0, 2, 3))
        if code == 3:
            assert dump(url) == before


# ------------------------------------------------------------------ config files and URLs

PASSWORD_CHARS = string.ascii_letters + string.digits + string.punctuation + " "
PASSWORDS = st.text(alphabet=st.sampled_from(PASSWORD_CHARS), min_size=8, max_size=30).map(
    lambda p: "Zq" + p + "Xj"
)  # rare capitals at both ends: never found in output by chance


def _leaks(text: str, password: str, benign: str = "") -> bool:
    """The password in ``text``, whole or encoded, or any 8 characters of it that
    ``benign`` (what the tool prints with another password) does not hold."""
    forms = {password, quote(password, safe=""), quote(password)}
    return any(f in text for f in forms) or any(
        password[i : i + 8] in text and password[i : i + 8] not in benign
        for i in range(len(password) - 7)
    )


@FUZZ
@given(
    password=PASSWORDS,
    scheme=st.sampled_from(["mysql+pymysql", "postgresql", "mysql"]),
    form=st.sampled_from(["userinfo", "raw", "query", "both"]),
    junk=st.sampled_from(["", "?charset=nosuch", "?foo=1", ":notaport", "/db?x=%zz"]),
    via=st.sampled_from(["flag", "env", "neutron-conf", "nova-db", "nova-conf", "nova-api"]),
)
def test_no_password_in_any_output(demo_db, password, scheme, form, junk, via):
    for text in _audit_outputs(demo_db, _url(password, scheme, form, junk), via):
        if not _leaks(text, password):
            continue
        # Hypothesis also draws literals from the code under test ("vifdoctor", ...): an
        # 8-character piece of the password is a leak only if the same run with another
        # password of its length does not print it too (the tool's own words).
        other = "Zq" + "~" * (len(password) - 4) + "Xj"
        control = "".join(_audit_outputs(demo_db, _url(other, scheme, form, junk), via))
        assert not _leaks(text, password, control), (password, text)


def _url(password: str, scheme: str, form: str, junk: str) -> str:
    encoded = quote(password, safe="")
    userinfo = {
        "userinfo": f"u:{encoded}@",
        "raw": f"u:{password}@",
        "query": "u@",
        "both": f"u:{encoded}@",
    }[form]
    query = f"password={encoded}" if form in ("query", "both") else ""
    url = f"{scheme}://{userinfo}127.0.0.1:1/db"
    if junk.startswith(":"):
        url = f"{scheme}://{userinfo}127.0.0.1{junk}/db"
    elif junk:
        url += junk
    if query:
        url += ("&" if "?" in url else "?") + query
    return url


def _audit_outputs(demo_db: str, url: str, via: str) -> list[str]:
    """The audit's stdout and stderr, in table and JSON, with ``url`` reaching it ``via``."""
    outputs = []
    env = {}
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp, "x.conf")
        section = "api_database" if via == "nova-api" else "database"
        # oslo.config interpolates '$'; a random line may also break the file's syntax
        conf.write_text(f"[{section}]\nconnection = {url.replace('$', '$$')}\n")
        argv = {
            "flag": ["--neutron-db", url],
            "env": [],
            "neutron-conf": ["--neutron-config-file", str(conf)],
            "nova-db": ["--neutron-db", demo_db, "--nova-db", url],
            "nova-conf": ["--neutron-db", demo_db, "--nova-config-file", str(conf)],
            "nova-api": ["--neutron-db", demo_db, "--nova-config-file", str(conf)],
        }[via]
        if via == "env":
            env["VIFDOCTOR_NEUTRON_DB"] = url
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            for fmt in ("table", "json"):
                code, out, err = run_cli(["audit", *argv, "-f", fmt], debug=False)
                _runs_cleanly(code, err, (3,))
                outputs.append(out + err)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return outputs
