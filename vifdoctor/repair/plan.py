"""The repair plan: which binding rows change, from what exact text to what.

Pure: judged bindings in, :class:`Change` records out. A row is changed only
when a selected, repairable finding asks for it; the new value is the stored
object with only the corrected keys changed, serialized as Neutron does
(``json.dumps``). Rows that are malformed (VD104), not ACTIVE, or judged by no
repairable rule are never planned.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from vifdoctor.errors import VifdoctorError
from vifdoctor.model import Binding, Change, parse_json_column
from vifdoctor.rules import catalog
from vifdoctor.rules.finding import Judgement, apply_correction
from vifdoctor.rules.plug import RuleContext, nova_plug

#: Codes no database rewrite repairs but a re-bind through Neutron's API does (``repair
#: --os-cloud``): the OVN driver rewrites the LSP's requested-chassis at any port update.
REBIND_ONLY = frozenset({"VD408"})


def repair_codes(named: Iterable[str], *, rebind: bool = False) -> frozenset[str]:
    """The codes a repair acts on: VD101 and VD103 unless others are named.

    ``rebind``: the repair re-binds through Neutron's API, which also repairs REBIND_ONLY.
    """
    named = frozenset(named)
    if not named:
        return catalog.repairable_by_default()
    refused = sorted(named - catalog.repairable() - (REBIND_ONLY if rebind else frozenset()))
    if refused:
        api_only = [c for c in refused if c in REBIND_ONLY]
        raise VifdoctorError(
            f"{', '.join(refused)} cannot be repaired in the database (repairable: "
            f"{', '.join(sorted(catalog.repairable()))}"
            + (
                f"; {', '.join(api_only)} only by a re-bind through the API, --os-cloud"
                if api_only
                else ""
            )
            + "); see `vifdoctor explain CODE`"
        )
    return named


def plan_change(
    binding: Binding, judgement: Judgement, codes: frozenset[str], ctx: RuleContext
) -> Change | None:
    """The change one judged row needs, or None."""
    if binding.status not in (None, "ACTIVE"):
        return None
    if any(f.code == "VD104" for f in judgement.findings):
        return None  # never rewrite a row whose text vifdoctor cannot read whole
    fixes = sorted(
        (f for f in judgement.findings if f.code in codes and f.correction),
        key=lambda f: f.code,
    )
    if not fixes:
        return None
    parsed = parse_json_column(binding.vif_details)
    if not parsed.ok:
        return None
    before = parsed.as_dict()
    after = before
    for f in fixes:
        after = apply_correction(after, f.correction)
    if after == before and binding.vif_details:
        return None

    def plug(details: dict) -> str:
        return nova_plug(
            binding.vif_type, details, ctx.nova_generation, ctx.nova_firewall_driver
        ).value

    return Change(
        port_id=binding.port_id,
        host=binding.host,
        status=binding.status,
        stored=binding.vif_details,
        new=json.dumps(after),
        codes=tuple(f.code for f in fixes),
        device_owner=binding.device_owner,
        device_id=binding.device_id,
        vif_type=binding.vif_type,
        plug_before=plug(before),
        plug_after=plug(after),
        binding=binding,
    )


def plan_order(change: Change) -> tuple[str, str]:
    """How the database path lists a plan: by device_id (code point order, which is
    UTF-8 byte order: CAST(device_id AS BINARY) on MariaDB), then port_id, so one VM's
    ports are listed together. Sorted here, not by the server (issue 14)."""
    return (change.device_id, change.port_id)


class Planner:
    """:func:`plan_change` for one run, with its memo: rows that share a Judgement
    (judge_all's ``shapes``) and stored text share the computed new text and plugs too."""

    def __init__(self, codes: frozenset[str], ctx: RuleContext):
        self.codes = codes
        self.ctx = ctx
        # id(judgement) -> (the judgement, kept so its id stays its own; by (text, type, status))
        self.memo: dict[int, tuple[Judgement, dict[tuple, Change | None]]] = {}

    def __call__(self, binding: Binding, judgement: Judgement) -> Change | None:
        """The change this judged row needs, or None."""
        if not judgement.findings:
            return None
        entry = self.memo.get(id(judgement))
        if entry is None or entry[0] is not judgement:
            entry = self.memo[id(judgement)] = (judgement, {})
        key = (binding.vif_details, binding.vif_type, binding.status)
        if key not in entry[1]:
            change = entry[1][key] = plan_change(binding, judgement, self.codes, self.ctx)
            return change
        like = entry[1][key]
        if like is None:
            return None
        # Built directly: dataclasses.replace costs twice as much (issue 14).
        return Change(
            binding.port_id,
            binding.host,
            like.status,
            like.stored,
            like.new,
            like.codes,
            binding.device_owner,
            binding.device_id,
            like.vif_type,
            like.plug_before,
            like.plug_after,
            binding,
            like.action,
        )


def plan_changes(
    judged: Iterable[tuple[Binding, Judgement]], codes: frozenset[str], ctx: RuleContext
) -> Iterator[Change]:
    """The changes, in the judged order (a :class:`Planner`'s)."""
    planner = Planner(codes, ctx)
    for binding, judgement in judged:
        change = planner(binding, judgement)
        if change is not None:
            yield change
