"""Every finding code, declared once: its severity, its words, what it applies to, its fix.

A rule module declares each code it reports with :func:`rule` (on the pure
function that judges it) or :func:`declare` (when a family's judge function
reports several codes together, as the Nova and host-wiring rules do). The
catalog, ``vifdoctor explain``, the repairable set, the read the repair needs
and the docs table all come from these declarations; nothing else lists codes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from vifdoctor.model import Binding, Severity

# The subjects a rule judges, in the order the binding engine asks them.
BINDING_ROW = "binding row"  # every row, before anything else is read from it
INACTIVE_BINDING = "inactive binding"  # a row that is not the port's live binding
VM_PORT_STATE = "vm port state"  # a VM port's binding state: a finding here ends its judging
VM_PORT_PLUG = "vm port plug"  # a VM port bound by an L2-agent driver, against its host
AGENT = "agent"  # one row of Neutron's agents table
INSTANCE = "instance"  # a Nova instance against its Neutron ports
HOST_WIRING = "host wiring"  # a host's live wiring against the bindings
OVN = "ovn"  # a binding against OVN's Northbound and Southbound databases
OVN_HOST_WIRING = "ovn host wiring"  # a host's scan against OVN's chassis and claims
MIGRATION = "migration"  # Nova's migration records against the bindings


@dataclass(frozen=True)
class Scope:
    """What a rule applies to; an empty field means any value."""

    subject: str
    vif_types: frozenset[str] = frozenset()
    drivers: frozenset[str] = frozenset()  # the binding's (bottom level) mechanism driver
    device_owners: tuple[str, ...] = ()  # prefixes, e.g. "compute:"

    def matches(self, b: Binding) -> bool:
        if self.vif_types and b.vif_type not in self.vif_types:
            return False
        if self.drivers and (b.driver or "").strip() not in self.drivers:
            return False
        return not self.device_owners or b.device_owner.startswith(self.device_owners)

    def as_text(self) -> str:
        parts = [self.subject]
        if self.vif_types:
            parts.append("vif_type " + "/".join(sorted(self.vif_types)))
        if self.drivers:
            parts.append("driver " + "/".join(sorted(d or "(none)" for d in self.drivers)))
        if self.device_owners:
            parts.append("device_owner " + "/".join(f"{o}*" for o in self.device_owners))
        return ", ".join(parts)


#: A correction: (stored details, the host's needs, the rule context) -> {"set", "remove"}.
Correction = Callable[[dict, Any, Any], dict]


@dataclass(frozen=True)
class Rule:
    """One finding code as declared: what it means, where it applies, how it is fixed."""

    code: str
    severity: Severity
    title: str
    why: str
    impact: str
    remedy: str
    applies_to: Scope
    check: Callable[..., Any] | None = None  # the pure function; None: a family's judge
    correction: Correction | None = field(default=None, compare=False)
    repair_by_default: bool = False  # repaired without being named with --code
    summary: str = ""  # one line for the tables in README.md and docs/rules.md
    deletes_row: bool = False  # repaired by deleting the row (VD206), not by a correction

    @property
    def repairable(self) -> bool:
        """The database repair can correct it (a correction, or the row's deletion)."""
        return self.correction is not None or self.deletes_row


REGISTRY: dict[str, Rule] = {}
# The caches are emptied whenever a rule is declared (declarations happen at import),
# and whenever the registry's size is not the one they were built for (a rule removed).
_BY_SUBJECT: dict[str, tuple[Rule, ...]] = {}
# (subject, vif_type, driver, device_owner) -> the rules whose scope matches: the
# engine asks per binding row, and a cloud has few distinct keys (issue 14: sorting
# and filtering the registry per row was 15 % of an audit).
_MATCHING: dict[tuple[str, str, str | None, str], tuple[Rule, ...]] = {}
_MATCHING_MAX = 4096
# the codes repaired by default: asked once per affected instance of a Nova join
_BY_DEFAULT: list[frozenset[str]] = []
_CACHED_SIZE = [0]


def _caches_fresh() -> None:
    if len(REGISTRY) != _CACHED_SIZE[0]:
        _BY_SUBJECT.clear()
        _MATCHING.clear()
        _BY_DEFAULT.clear()
        _CACHED_SIZE[0] = len(REGISTRY)


def _add(entry: Rule) -> None:
    if entry.code in REGISTRY:
        raise ValueError(f"{entry.code} is declared twice")
    if entry.repair_by_default and entry.correction is None:
        raise ValueError(f"{entry.code} is repaired by default but declares no correction")
    REGISTRY[entry.code] = entry
    _BY_SUBJECT.clear()
    _MATCHING.clear()
    _BY_DEFAULT.clear()


def declare(
    code: str,
    severity: Severity,
    title: str,
    *,
    why: str,
    impact: str,
    remedy: str,
    applies_to: Scope,
    summary: str = "",
    correction: Correction | None = None,
    repair_by_default: bool = False,
    deletes_row: bool = False,
    check: Callable[..., Any] | None = None,
) -> None:
    """Declare a code; without ``check``, a family's judge function reports it with others."""
    _add(
        Rule(
            code,
            severity,
            title,
            why,
            impact,
            remedy,
            applies_to,
            check,
            correction,
            repair_by_default,
            summary,
            deletes_row,
        )
    )


def rule(
    code: str, severity: Severity, title: str, **declaration: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a code on the pure function that judges it; the engine then calls it.

    Takes the keyword arguments of :func:`declare` (all but ``check``).
    """

    def register(check: Callable[..., Any]) -> Callable[..., Any]:
        declare(code, severity, title, check=check, **declaration)
        return check

    return register


def rules_for(subject: str) -> tuple[Rule, ...]:
    """The rules an engine runs for one subject, in code order."""
    _caches_fresh()
    found = _BY_SUBJECT.get(subject)
    if found is None:
        found = _BY_SUBJECT[subject] = tuple(
            r
            for r in sorted(REGISTRY.values(), key=lambda r: r.code)
            if r.applies_to.subject == subject and r.check is not None
        )
    return found


def rules_matching(subject: str, b: Binding) -> tuple[Rule, ...]:
    """``rules_for(subject)`` narrowed to those whose scope matches the row, in code order."""
    _caches_fresh()
    key = (subject, b.vif_type, b.driver, b.device_owner)
    found = _MATCHING.get(key)
    if found is None:
        if len(_MATCHING) >= _MATCHING_MAX:  # a cloud of unusual owners: stay bounded
            _MATCHING.clear()
        found = _MATCHING[key] = tuple(r for r in rules_for(subject) if r.applies_to.matches(b))
    return found


def repairable() -> frozenset[str]:
    return frozenset(c for c, r in REGISTRY.items() if r.repairable)


def repairable_by_default() -> frozenset[str]:
    _caches_fresh()
    if not _BY_DEFAULT:
        _BY_DEFAULT.append(frozenset(c for c, r in REGISTRY.items() if r.repair_by_default))
    return _BY_DEFAULT[0]


def repair_vif_types(codes: Iterable[str]) -> frozenset[str]:
    """The vif_types of the rows these codes can flag: all a repair needs to read."""
    found: set[str] = set()
    for code in codes:
        scope = REGISTRY[code].applies_to
        if not scope.vif_types:
            return frozenset()  # a rule for any vif_type: the read cannot be narrowed
        found |= scope.vif_types
    return frozenset(found)
