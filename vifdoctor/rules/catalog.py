"""Every finding code vifdoctor can report: the registry once every rule module has declared.

Codes are stable: scripts and runbooks may key on them. ``vifdoctor explain
CODE`` prints an entry. The declarations live beside the rules that judge them
(binding.py, nova.py, wiring.py, ...); importing this module imports them all.
"""

from __future__ import annotations

from vifdoctor.rules import (  # noqa: F401 - they declare the codes
    binding,
    migration,
    nova,
    ovn,
    ovn_host,
    wiring,
)
from vifdoctor.rules.registry import REGISTRY, Rule, repairable, repairable_by_default

CodeInfo = Rule  # what the catalog calls an entry
CATALOG: dict[str, Rule] = REGISTRY


def lookup(code: str) -> Rule | None:
    return CATALOG.get(code.strip().upper())


__all__ = ["CATALOG", "CodeInfo", "lookup", "repairable", "repairable_by_default"]


def _repair_text(entry: Rule) -> str:
    if entry.repair_by_default:
        return "by default"
    return "with --code" if entry.repairable else "never"


def markdown_table(full: bool = False) -> str:
    """The findings table of README.md (``full``: docs/rules.md's), from the declarations."""
    if full:
        lines = [
            "| code | severity | title | applies to | repair |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {e.code} | {e.severity.value} | {e.title} | {e.applies_to.as_text()} "
            f"| {_repair_text(e)} |"
            for e in sorted(CATALOG.values(), key=lambda e: e.code)
        ]
    else:
        lines = ["| code | severity | meaning |", "| --- | --- | --- |"]
        lines += [
            f"| {e.code} | {e.severity.value} | {e.summary or e.title} |"
            for e in sorted(CATALOG.values(), key=lambda e: e.code)
        ]
    return "\n".join(lines) + "\n"
