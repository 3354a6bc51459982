"""The report as one self-contained HTML file (``-f html``): docs/output.md, "HTML report".

Everything is inline: CSS, JavaScript, the charts (SVG drawn here) and the data.
Operators open it on a bastion with no internet, so nothing may be fetched.

The summary charts are small and drawn here as SVG. The rows (findings,
instances, ports) can be a hundred thousand: they travel as one JSON blob with
every repeated string stored once, and the page's script renders only the page
of rows in view and the wiring diagram of the instance in view.

Data never becomes markup, and the page stays linear in the data's size: text
drawn by the template or the charts is escaped and cut (:func:`shown`), the
blob is strict JSON (no NaN, nesting bounded) with '<', '>', '&' and lone
surrogates escaped, so a value holding ``</script>`` cannot end its element.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from importlib import resources
from typing import IO, Any

import jinja2
from markupsafe import Markup, escape

from vifdoctor import __version__
from vifdoctor.errors import VifdoctorError
from vifdoctor.report import Listing, cut
from vifdoctor.rules import catalog
from vifdoctor.strictjson import dumps, strict

BLOB_MARK = "@@vifdoctor-blob@@"  # where the data goes in the rendered page
TOP = 40  # hosts shown in the heat map and the per-host bars; the table has them all
SEVERITIES = ("failure", "warning", "info")
# findings fields kept for the table, in the order of a row of the blob
ROW_FIELDS = (
    "code",
    "severity",
    "port_id",
    "host",
    "device_id",
    "nova_plug",
    "needed_plug",
    "message",
)


class Strings:
    """Every distinct string once; rows hold their indexes (the blob stays small)."""

    def __init__(self) -> None:
        self.index: dict[Any, int] = {"": 0, None: 0}
        self.table: list[str] = [""]

    def __call__(self, value: Any) -> int:
        try:  # the hot path: a string seen before
            return self.index[value]
        except (KeyError, TypeError):
            pass
        text = value if isinstance(value, str) else dumps(value, sort_keys=True)
        n = self.index.get(text)
        if n is None:
            n = self.index[text] = len(self.table)
            self.table.append(text)
        return n


class Rows(list):
    """Rows already serialized as compact JSON text: a 100,000-row blob in a few MB."""

    def add(self, row: list) -> None:
        self.append(json.dumps(row, separators=(",", ":")))


class _Port:
    """What the report knows of one port, from its findings and its instance."""

    __slots__ = ("host", "device", "binding", "needs", "seen", "basis", "problems", "codes")

    def __init__(self) -> None:
        self.host = self.device = self.binding = self.needs = self.seen = self.basis = ""
        self.problems: list[str] = []
        self.codes: list[str] = []


def build_data(report: Any, steps: Iterable[dict] | None = None) -> tuple[dict, dict]:
    """(blob for the page's script, figures for the server-drawn summary)."""
    s = Strings()
    ports: dict[str, _Port] = {}
    rows = Rows()
    heat: Counter = Counter()  # (host, code) -> findings
    devices_by_host: dict[str, set[str]] = {}
    live = getattr(report, "live_wiring", {}) or {}

    def port(port_id: str) -> _Port:
        p = ports.get(port_id)
        if p is None:
            p = ports[port_id] = _Port()
            scan = live.get(port_id)
            if scan:
                p.seen, p.basis, p.problems = scan["kind"], "host scan", scan["problems"]
                p.binding, p.needs = scan["next_plug"], scan["needed_plug"]
        return p

    for f in report.findings:
        rows.add([s(f.get(k)) for k in ROW_FIELDS])
        host = f.get("host") or ""
        heat[(host, f["code"])] += 1
        if f.get("port_id") and f.get("device_owner", "").startswith("compute:"):
            p = port(f["port_id"])
            p.host = p.host or host
            p.device = p.device or f.get("device_id") or ""
            p.binding = p.binding or f.get("nova_plug") or ""
            p.needs = p.needs or f.get("needed_plug") or ""
            if f["code"] not in p.codes:
                p.codes.append(f["code"])
            if p.device:
                devices_by_host.setdefault(host, set()).add(p.device)

    instances = Rows()
    if report.nova is not None:
        devices_by_host = {}
        for inst in report.instances:
            info = inst.get("instance") or {}
            impact = inst.get("impact") or {}
            ids = []
            for pv in inst.get("ports") or []:
                p = port(pv["port_id"])
                p.host = pv.get("host") or p.host
                p.device = inst["device_id"]
                p.binding = pv.get("next_plug") or p.binding
                p.needs = pv.get("needed_plug") or p.needs
                if p.basis != "host scan":
                    p.seen, p.basis = pv.get("cached_plug") or "", pv.get("wired_basis") or ""
                p.codes = sorted(set(p.codes) | set(pv.get("codes") or []))
                ids.append(s(pv["port_id"]))
            host = info.get("host") or next(
                (pv.get("host") for pv in inst.get("ports") or [] if pv.get("host")), ""
            )
            devices_by_host.setdefault(host or "(no host)", set()).add(inst["device_id"])
            instances.add(
                [
                    s(inst["device_id"]),
                    s(info.get("name")),
                    s(host),
                    s(impact.get("state")),
                    s(" ".join(inst.get("codes") or [])),
                    s(impact.get("security_groups")),
                    s(impact.get("next_stop_start_or_hard_reboot")),
                    [
                        [s(st.get("action")), s(st.get("command")), s(st.get("reason"))]
                        for st in inst.get("steps") or []
                    ],
                    ids,
                ]
            )
    else:  # no Nova: group the findings' VM ports by device
        by_device: dict[str, list[str]] = {}
        for port_id, p in ports.items():
            if p.device:
                by_device.setdefault(p.device, []).append(port_id)
        for device, port_ids in sorted(by_device.items()):
            first = ports[port_ids[0]]
            found = sorted({c for i in port_ids for c in ports[i].codes})
            instances.add(
                [
                    s(device),
                    0,
                    s(first.host),
                    0,
                    s(" ".join(found)),
                    0,
                    0,
                    [],
                    [s(i) for i in port_ids],
                ]
            )

    port_rows = Rows()
    for pid, p in ports.items():
        port_rows.add(
            [
                s(pid),
                s(p.host),
                s(p.device),
                s(p.binding),
                s(p.needs),
                s(p.seen),
                s(p.basis),
                s("\n".join(p.problems)),
                s(" ".join(p.codes)),
            ]
        )
    step_rows = Rows()
    for st in steps or []:
        step_rows.add(
            [
                s(st.get("host")),
                s(st.get("action")),
                s(st.get("instance")),
                s(st.get("command")),
                s(st.get("reason")),
            ]
        )
    code_info = {
        c: {
            "severity": info.severity.value,
            "title": info.title,
            "impact": info.impact,
            "remedy": info.remedy,
        }
        for c, info in catalog.CATALOG.items()
        if c in report.by_code
    }
    blob = {
        "strings": s.table,
        "findings": rows,
        "ports": port_rows,
        "instances": instances,
        "codes": code_info,
        "nova": report.nova is not None,
        "steps": step_rows,
    }
    figures = {"heat": heat, "devices_by_host": {h: len(d) for h, d in devices_by_host.items()}}
    return blob, figures


_SURROGATE = re.compile("[\ud800-\udfff]")


def _escaped_surrogate(match: re.Match) -> str:
    return f"\\u{ord(match.group()):04x}"


def _no_surrogates(text: str) -> str:
    """Lone surrogates (text UTF-8 cannot encode) as ``\\udXXX``, so any stream can write it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub(_escaped_surrogate, text)
    return text


def shown(value: Any) -> Any:
    """A value as the template draws it: strict (no NaN, bounded nesting), text cut.

    The data blob keeps every value whole; what the page draws server-side (the
    header, tables of schema and agents, chart labels) is bounded like a table cell.
    """
    value = strict(value)
    if isinstance(value, str):
        return _no_surrogates(cut(value))
    if isinstance(value, dict):
        return {shown(k) if isinstance(k, str) else k: shown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shown(v) for v in value]
    return value


def safe_json(value: Any) -> str:
    """JSON safe inside <script type="application/json">: no '<', '>' or '&' unescaped,
    strict (NaN would make the page's JSON.parse fail), lone surrogates escaped."""
    text = _no_surrogates(dumps(value, separators=(",", ":"), ensure_ascii=False))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def write_blob(blob: dict, out: IO[str], chunk: int = 5000) -> None:
    """The blob as one JSON object, written a slice at a time (never one giant string)."""
    out.write("{")
    for n, (key, value) in enumerate(blob.items()):
        out.write(("," if n else "") + json.dumps(key) + ":")
        if isinstance(value, Rows):  # numbers only: nothing to escape
            out.write("[")
            for i in range(0, len(value), chunk):
                out.write(("," if i else "") + ",".join(value[i : i + chunk]))
            out.write("]")
        elif isinstance(value, list):
            out.write("[")
            for i in range(0, len(value), chunk):
                out.write(("," if i else "") + safe_json(value[i : i + chunk])[1:-1])
            out.write("]")
        else:
            out.write(safe_json(value))
    out.write("}")


# ---- server-drawn SVG charts -------------------------------------------------------------


def bar_chart(items: list[tuple[str, int, str]], label_width: int = 150) -> Markup:
    """Horizontal bars: (label, value, css class) per row."""
    if not items:
        return Markup('<p class="empty">nothing to show</p>')
    top = max(v for _, v, _ in items) or 1
    bar_w, row_h = 360, 22
    height = row_h * len(items) + 4
    parts = [
        f'<svg class="chart bars" role="img" width="{label_width + bar_w + 70}" '
        f'height="{height}" viewBox="0 0 {label_width + bar_w + 70} {height}">'
    ]
    for n, (text, value, cls) in enumerate(items):
        label = shown(text)
        y = n * row_h + 2
        w = max(1, round(bar_w * value / top)) if value else 0
        parts.append(
            f'<g class="{escape(cls)}"><title>{escape(label)}: {value}</title>'
            f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{w}" height="{row_h - 6}" rx="2"/>'
            f'<text class="value" x="{label_width + w + 5}" y="{y + 15}">{value}</text></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it went through escape()


def heat_map(heat: Counter, hosts: list[str], codes: list[str]) -> Markup:
    """Hosts (rows) x codes (columns); the cell's shade grows with the findings' count."""
    if not hosts or not codes:
        return Markup('<p class="empty">nothing to show</p>')
    cell_w, cell_h, left, head = 54, 20, 170, 26
    width, height = left + cell_w * len(codes) + 4, head + cell_h * len(hosts) + 4
    top = max(heat[(h, c)] for h in hosts for c in codes) or 1
    parts = [
        f'<svg class="chart heat" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
    ]
    for j, code in enumerate(codes):
        sev = catalog.CATALOG[code].severity.value if code in catalog.CATALOG else "info"
        parts.append(
            f'<text class="{sev}" x="{left + j * cell_w + cell_w / 2}" y="16" '
            f'text-anchor="middle">{escape(code)}</text>'
        )
    for i, name in enumerate(hosts):
        host = shown(name)
        y = head + i * cell_h
        parts.append(
            f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">'
            f"{escape(host or '(no host)')}</text>"
        )
        for j, code in enumerate(codes):
            v = heat[(name, code)]
            shade = 0.12 + 0.88 * v / top if v else 0
            parts.append(
                f"<g><title>{escape(host or '(no host)')} {escape(code)}: {v}</title>"
                f'<rect x="{left + j * cell_w}" y="{y}" width="{cell_w - 2}" '
                f'height="{cell_h - 2}" class="{"hot" if v else "cold"}" '
                f'fill-opacity="{shade:.2f}"/>'
                + (
                    f'<text x="{left + j * cell_w + cell_w / 2 - 1}" y="{y + 14}" '
                    f'text-anchor="middle">{v}</text>'
                    if v
                    else ""
                )
                + "</g>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it went through escape()


def ovn_progress(report: Any, summary: dict) -> dict | None:
    """VM ports fully on ML2/OVN out of all, and per host what is left on ML2/OVS.

    From the OVN join's migration tally when NB/SB (or the OVN agents) were read;
    else from the bindings the audit counted as ML2/OVN-bound.
    """
    migration = (getattr(report, "ovn", None) or {}).get("migration")
    if migration:
        total, done = migration.get("vm_ports", 0), migration.get("fully_on_ovn", 0)
        left = []
        for host, row in (migration.get("hosts") or {}).items():
            rest = {k: v for k, v in row.items() if k not in ("vm_ports", "fully_on_ovn") and v}
            if rest:
                left.append((host, ", ".join(f"{v} {k}" for k, v in rest.items())))
        return {
            "ovn": done,
            "total": total,
            "other": total - done,
            "left": left[:TOP],
            "more": max(0, len(left) - TOP),
            "summary": migration.get("summary", ""),
            "percent": round(100 * done / total, 1) if total else 0.0,
        }
    ovn = sum(v for k, v in summary.get("skipped", {}).items() if "ovn" in k.lower())
    if not ovn:
        return None
    total = ovn + summary.get("judged", 0)
    return {
        "ovn": ovn,
        "other": summary.get("judged", 0),
        "total": total,
        "left": [],
        "more": 0,
        "summary": "",
        "percent": round(100 * ovn / total, 1) if total else 0.0,
    }


_ENV: jinja2.Environment | None = None


def environment() -> jinja2.Environment:
    global _ENV
    if _ENV is None:
        _ENV = jinja2.Environment(
            loader=jinja2.PackageLoader("vifdoctor.report", "templates"),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=jinja2.StrictUndefined,
        )
    return _ENV


def _asset(name: str) -> str:
    """A stylesheet or script shipped beside the template, inlined as it is."""
    text = (resources.files("vifdoctor.report") / "templates" / name).read_text("utf-8")
    assert "</script" not in text.lower() and "</style" not in text.lower(), name
    return text


def render(listing: Listing, out: IO[str]) -> None:
    report = listing.report
    if report is None:
        raise VifdoctorError(
            "-f html is for `audit` and `remediation` (and `demo`); use -f json here"
        )
    remediation = listing.rows_key == "steps"
    doc = listing.document
    summary = report.summary()
    blob, figures = build_data(report, doc.get("steps") if remediation else None)
    heat: Counter = figures["heat"]
    by_host: Counter = Counter()
    for (host, _code), n in heat.items():
        by_host[host] += n
    hosts = [h for h, _ in sorted(by_host.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]]
    codes = list(summary["by_code"])
    code_bars = [
        (
            f"{c} {catalog.CATALOG[c].title}" if c in catalog.CATALOG else c,
            n,
            catalog.CATALOG[c].severity.value if c in catalog.CATALOG else "info",
        )
        for c, n in summary["by_code"].items()
    ]
    sev_bars = [(s, summary["by_severity"].get(s, 0), s) for s in SEVERITIES]
    per_host = sorted(figures["devices_by_host"].items(), key=lambda kv: (-kv[1], kv[0]))
    context = {
        "title": "vifdoctor " + ("remediation plan" if remediation else "audit report"),
        "version": __version__,
        "remediation": remediation,
        "doc": {k: shown(v) for k, v in doc.items() if k == "hosts"},
        "summary": shown(summary),
        "schema": shown(report.schema),
        "assumptions": shown(report.assumptions),
        "agents": shown(report.agents),
        "nova": shown(report.nova),
        "code_chart": bar_chart(code_bars, 230),
        "severity_chart": bar_chart(sev_bars, 80),
        "heat_chart": heat_map(heat, hosts, codes),
        "hosts_total": len(by_host),
        "hosts_shown": len(hosts),
        "instances_chart": bar_chart([(h, n, "inst") for h, n in per_host[:TOP]], 170),
        "instances_hosts_total": len(per_host),
        "ovn": shown(ovn_progress(report, summary)),
        "coverage": shown(getattr(report, "host_reports", None)),
        "plan": shown(doc.get("summary")) if remediation else None,
        # S704: a constant and the package's own assets, no data
        "blob": Markup(BLOB_MARK),  # noqa: S704
        "css": Markup(_asset("report.css")),  # noqa: S704
        "js": Markup(_asset("report.js")),  # noqa: S704
    }
    page = environment().get_template("report.html.j2").render(**context)
    head, tail = page.split(BLOB_MARK)
    out.write(head)
    write_blob(blob, out)
    out.write(tail)
