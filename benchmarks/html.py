"""The HTML report at scale: file size, render time, and time to interactive in Chromium.

Two reports (docs/benchmarks.md, "HTML report"):

- ``cloud``: the generated cloud (benchmarks/generate.py: real neutron 29.0.0 and nova
  34.0.0 schemas in MariaDB, 10% drift) audited with Nova, ``-f html``;
- ``synthetic``: an AuditReport holding exactly N findings (default 100,000: one per
  drifted port of a million-port cloud) over N/2 instances, to show the table at that
  many rows.

Each file is opened by headless Chromium (tests/testkit/headless.py) from disk: the time from
navigation until the page's script has rendered the first page of findings and an
instance (``data-ready``), then the time to filter by code, to type a text filter and
to sort 100,000 rows by host.

    .venv/bin/python benchmarks/html.py [--ports 100000] [--reuse] [--findings 100000]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _common import ROOT, nova_database, url  # noqa: E402
from audit import refresh_heartbeats  # noqa: E402
from generate import generate  # noqa: E402
from testkit.headless import Chromium  # noqa: E402

from vifdoctor.model import Finding, Severity  # noqa: E402
from vifdoctor.report.findings import audit_listing  # noqa: E402
from vifdoctor.report.html import render  # noqa: E402
from vifdoctor.results import AuditReport  # noqa: E402
from vifdoctor.rules import catalog  # noqa: E402


def synthetic(n: int) -> AuditReport:
    """n VD101/VD103 findings over n/2 ports and instances on n/500 hosts, with Nova."""
    report = AuditReport(
        schema={"source": "synthetic", "layout": "ocata"},
        assumptions=["synthetic findings (benchmarks/html.py)"],
    )
    report.nova = [{"cell": "cell1", "url": "synthetic", "dialect": "none"}]
    hosts = max(1, n // 500)
    for i in range(n // 2):
        port, device = str(uuid.UUID(int=2 * i + 1)), str(uuid.UUID(int=2 * i + 2))
        host = f"compute{i % hosts:04d}"
        for code in ("VD101", "VD103"):
            info = catalog.CATALOG[code]
            report.add(
                Finding(
                    code=code,
                    severity=info.severity,
                    title=info.title,
                    message=f"{code}: ovs_hybrid_plug=(missing): Nova plugs direct",
                    impact=info.impact,
                    remedy=info.remedy,
                    port_id=port,
                    host=host,
                    device_owner="compute:nova",
                    device_id=device,
                    vif_type="ovs",
                    nova_plug="direct",
                    needed_plug="hybrid",
                )
            )
        report.instances.add(
            {
                "device_id": device,
                "codes": ["VD101", "VD103"],
                "instance": {"uuid": device, "name": f"vm{i}", "host": host, "cell": "cell1"},
                "ports": [
                    {
                        "port_id": port,
                        "host": host,
                        "codes": ["VD101", "VD103"],
                        "cached_plug": "hybrid",
                        "wired_basis": "nova cache",
                        "next_plug": "direct",
                        "needed_plug": "hybrid",
                        "after_repair_plug": "hybrid",
                    }
                ],
                "impact": {
                    "state": "active/running",
                    "security_groups": "enforced",
                    "next_stop_start_or_hard_reboot": f"plugs {port} other than the host needs",
                },
                "steps": [
                    {
                        "order": 1,
                        "action": "repair-binding",
                        "instance": device,
                        "host": host,
                        "reason": "the binding must be fixed first",
                        "command": f"vifdoctor repair --port {port} --apply",
                    }
                ],
            }
        )
        report.rows += 1
    report.instances_read = n // 2
    assert report.by_severity[Severity.FAILURE.value] == n // 2
    return report


def measure(path: Path) -> dict:
    """Open the file in Chromium; time ready, a code filter, a text filter, a sort."""
    with Chromium() as b:
        wall = b.load(path, timeout=120)
        problems = b.problems()
        ready_ms = float(b.evaluate("document.body.dataset.readyMs"))

        def timed(js: str) -> float:
            return b.evaluate(
                "(() => { const t = performance.now();"
                + js
                + "; return performance.now() - t; })()"
            )

        code = timed(
            "const s = document.getElementById('f-code'); s.value = 'VD101';"
            " s.dispatchEvent(new Event('change'))"
        )
        rows_after_code = b.evaluate("document.getElementById('f-count').textContent")
        # the text box is debounced (150 ms): time until the count changes, less the debounce
        text = b.evaluate(
            "new Promise(done => { const c = document.getElementById('f-count');"
            " const before = c.textContent, t = performance.now();"
            " const host = document.querySelector('#f-host option:nth-child(3)').value;"
            " const i = document.getElementById('f-text'); i.value = host;"
            " i.dispatchEvent(new Event('input'));"
            " const poll = () => c.textContent !== before ? done(performance.now() - t - 150)"
            " : setTimeout(poll, 1); poll(); })"
        )
        rows_after_text = b.evaluate("document.getElementById('f-count').textContent")
        reset = timed(
            "document.getElementById('f-text').value = '';"
            " document.getElementById('f-text').dispatchEvent(new Event('input'));"
            " const s = document.getElementById('f-code'); s.value = '';"
            " s.dispatchEvent(new Event('change'))"
        )
        b.evaluate("new Promise(r => setTimeout(r, 300))")
        sort = timed("document.querySelector('#findings-table th[data-col=\"3\"]').click()")
        rows = b.evaluate("document.getElementById('f-count').textContent")
    return {
        "wall_s": wall,
        "ready_ms": ready_ms,
        "code_filter_ms": code,
        "rows_after_code": rows_after_code,
        "text_filter_rows": rows_after_text,
        "reset_ms": reset,
        "sort_ms": sort,
        "rows": rows,
        "problems": problems,
        "text_filter_ms": text,
    }


def report_line(name: str, path: Path, render_s: float, m: dict) -> str:
    size = path.stat().st_size
    return (
        f"{name}: {size / 1e6:.1f} MB, rendered in {render_s:.1f} s; Chromium: ready "
        f"{m['ready_ms']:.0f} ms after navigation ({m['wall_s']:.2f} s wall, as polled); "
        f"{m['rows']}; code filter {m['code_filter_ms']:.0f} ms ({m['rows_after_code']}); "
        f"text filter {m['text_filter_ms']:.0f} ms ({m['text_filter_rows']}); "
        f"sort by host {m['sort_ms']:.0f} ms; "
        f"console problems: {m['problems'] or 'none'}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ports", type=int, default=100_000)
    p.add_argument("--drift", type=float, default=0.1)
    p.add_argument("--database", default=None, help="default vifdoctor_bench_html_<ports>")
    p.add_argument("--reuse", action="store_true", help="do not regenerate the cloud")
    p.add_argument("--findings", type=int, default=100_000)
    p.add_argument("--out", default=None, help="keep the HTML files in this folder")
    args = p.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="vifdoctor-html-bench-"))
    out.mkdir(parents=True, exist_ok=True)

    db = args.database or f"vifdoctor_bench_html_{args.ports}"
    if not args.reuse:
        generate(args.ports, db, args.drift, quiet=True)
    refresh_heartbeats(db)
    cloud = out / f"cloud-{args.ports}.html"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    t0 = time.perf_counter()
    with open(cloud, "w") as fh:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "vifdoctor",
                "audit",
                "--neutron-db",
                url(db),
                "--nova-db",
                url(nova_database(db)),
                "-f",
                "html",
            ],
            stdout=fh,
            env=env,
            cwd=ROOT,
        )
    render_s = time.perf_counter() - t0
    assert run.returncode == 2, run.returncode
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "vifdoctor",
            "audit",
            "--neutron-db",
            url(db),
            "--nova-db",
            url(nova_database(db)),
            "-f",
            "json",
        ],
        stdout=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
    )
    print(f"the same audit -f json: {time.perf_counter() - t0:.1f} s", flush=True)
    print(
        report_line(
            f"cloud {args.ports} ports, drift {args.drift}", cloud, render_s, measure(cloud)
        ),
        flush=True,
    )

    t0 = time.perf_counter()
    report = synthetic(args.findings)
    buf = io.StringIO()
    render(audit_listing(report), buf)
    synth = out / f"synthetic-{args.findings}.html"
    synth.write_text(buf.getvalue())
    render_s = time.perf_counter() - t0
    print(
        report_line(f"synthetic {args.findings} findings", synth, render_s, measure(synth)),
        flush=True,
    )
    print(f"files in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
