"""What every rule family shares: a judgement, a finding built from its declaration.

Pure helpers, no I/O. A finding takes its severity, title, impact and remedy
from the code's declaration in :mod:`vifdoctor.rules.registry`, never from
text of its own, so the catalog and the findings cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vifdoctor.model import Binding, Finding, ParsedJson
from vifdoctor.rules.registry import REGISTRY

RAW_CUT = 200  # characters of a malformed value shown in a finding


@dataclass
class Judgement:
    category: str
    findings: list[Finding] = field(default_factory=list)


def cut(text: str, limit: int = RAW_CUT) -> str:
    """A raw value cut short for display, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} chars)"


def shown_details(parsed: ParsedJson) -> Any:
    """Stored details for a report: the object where it parses, else the raw text."""
    if parsed.ok and parsed.raw:
        return parsed.value
    return cut(parsed.raw)


def declared_finding(code: str, message: str, **fields: Any) -> Finding:
    """A finding of ``code`` with the words its declaration gives."""
    info = REGISTRY[code]
    return Finding(
        code=code,
        severity=info.severity,
        title=info.title,
        message=message,
        impact=info.impact,
        remedy=info.remedy,
        **fields,
    )


def new_finding(code: str, b: Binding, message: str, **fields: Any) -> Finding:
    """A finding about one binding row, carrying the row's identity.

    Built in one call, not through declared_finding: merging the keywords twice was half
    of a finding's construction, about 130,000 times at a million ports (issue 14).
    """
    info = REGISTRY[code]
    return Finding(
        code=code,
        severity=info.severity,
        title=info.title,
        message=message,
        impact=info.impact,
        remedy=info.remedy,
        port_id=b.port_id,
        host=b.host,
        device_owner=b.device_owner,
        device_id=b.device_id,
        network_id=b.network_id,
        project_id=b.project_id,
        vif_type=b.vif_type,
        vnic_type=b.vnic_type,
        status=b.status or "",
        driver=b.driver or "",
        **fields,
    )


def apply_correction(details: dict, correction: dict | None) -> dict:
    """The stored object with a correction applied: keys set in place, others kept."""
    after = dict(details)
    if correction:
        after.update(correction.get("set", {}))
        for key in correction.get("remove", []):
            after.pop(key, None)
    return after
