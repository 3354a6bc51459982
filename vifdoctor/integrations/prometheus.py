"""The audit as Prometheus metrics, in node_exporter's textfile-collector format.

``vifdoctor audit --metrics-file /var/lib/prometheus/node-exporter/vifdoctor.prom``
writes the file atomically (prometheus_client's ``write_to_textfile``: a
temporary file renamed over the old one), so the collector never reads half a
file. When the audit cannot run, the file is still written, with
``vifdoctor_up 0`` and the last success time carried over from the previous
file, so an alert can fire on either. Labels hold codes, severities, hosts,
layouts and categories only: never a URL, so never a password.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

from vifdoctor.errors import VifdoctorError
from vifdoctor.results import AuditReport

PREFIX = "vifdoctor"
LAST_SUCCESS = f"{PREFIX}_audit_last_success_timestamp_seconds"
R = TypeVar("R", bound=AuditReport)


def require_client() -> None:
    """Fail before the audit, in one line, when prometheus_client is missing."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise VifdoctorError(
            "--metrics-file needs prometheus_client: pip install 'vifdoctor[prometheus]'"
        ) from None


def previous_success(path: str) -> float:
    """The last success time an earlier run wrote to ``path``; 0 when there is none."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return 0.0
    with contextlib.suppress(ValueError, TypeError):  # a damaged file counts as none
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == LAST_SUCCESS:
                    return float(sample.value)
    return 0.0


def finding_counts(report: AuditReport) -> Counter:
    """Findings per (code, severity, host), read from the spool; agentless ones host ''."""
    counts: Counter = Counter()
    for f in report.findings:
        counts[(f["code"], f["severity"], f.get("host") or "")] += 1
    return counts


def write_metrics(
    path: str, report: AuditReport | None, duration: float, now: float | None = None
) -> None:
    """Write the metrics of one run; ``report`` None means the audit could not run."""
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(f"{PREFIX}_{name}", doc, labels, registry=registry)

    gauge("up", "1 when the last audit ran to the end, 0 when it could not run").set(
        0 if report is None else 1
    )
    gauge("audit_duration_seconds", "Wall time of the last audit run, failed or not").set(duration)
    last = gauge(
        "audit_last_success_timestamp_seconds",
        "Unix time the last successful audit finished (0: never)",
    )
    if report is None:
        last.set(previous_success(path))
    else:
        last.set(time.time() if now is None else now)
        findings = gauge(
            "findings",
            "Findings of the last audit by code, severity and host",
            ("code", "severity", "host"),
        )
        for (code, severity, host), n in sorted(finding_counts(report).items()):
            findings.labels(code, severity, host).set(n)
        bindings = gauge(
            "bindings",
            "Bindings read by the last audit, by schema layout and category (judged or why not)",
            ("layout", "category"),
        )
        layout = str(report.schema.get("layout") or "")
        for category, n in sorted(report.categories.items()):
            bindings.labels(layout, category).set(n)
        if report.nova is not None:  # without Nova, the number is unknown, not zero
            gauge("instances_affected", "Instances with at least one finding (needs Nova)").set(
                len(report.instances)
            )
    try:
        write_to_textfile(path, registry)
    except OSError as exc:
        raise VifdoctorError(f"cannot write metrics file {path}: {exc.strerror}") from None


def audit_with_metrics(path: str, run: Callable[[], R]) -> R:
    """Run the audit, timed; write the metrics whether it ran or not, then hand on."""
    require_client()
    start = time.monotonic()
    try:
        report = run()
    except BaseException:
        write_metrics(path, None, time.monotonic() - start)
        raise
    write_metrics(path, report, time.monotonic() - start)
    return report
