"""The shape of a host-scan report, checked before the audit trusts one.

A report is a file an operator copied from a host: it may be truncated,
hand-edited, from another tool, or hostile. The audit reads the fields named
here with these types; anything else makes the report skipped with a note
naming the field, rather than an "internal error" halfway through an audit.
The schema is data (:data:`SCHEMA`) checked by a small walker, iteratively
bounded by the file's own size.
"""

from __future__ import annotations

from typing import Any

# A schema node: a type name, or a ("list", node) / ("dict", {field: node}) /
# ("map", node) for a dict of str to node, or ("opt", node) for "null or node".
Node = Any
STR, BOOL, ANY = "str", "bool", "any"
SCALAR = "scalar"  # str, int, float, bool or null (ovsdb's ofport may be [] too: ANY)

INTERFACE = ("dict", {"target_dev": ("opt", STR), "interfaceid": ("opt", STR), "mac": ("opt", STR)})
DOMAIN = (
    "dict",
    {
        "name": ("opt", STR),
        "uuid": ("opt", STR),
        "state": ("opt", STR),
        "interfaces": ("opt", ("list", INTERFACE)),
    },
)
OVS_IFACE = (
    "dict",
    {
        "name": ("opt", STR),
        "type": ("opt", STR),
        "ofport": ANY,
        "external_ids": ("opt", ("map", SCALAR)),
    },
)
OVS_PORT = ("dict", {"interfaces": ("opt", ("list", OVS_IFACE))})
BRIDGE = ("dict", {"name": ("opt", STR), "ports": ("opt", ("list", OVS_PORT))})
LINK = ("dict", {"name": STR, "kind": ("opt", STR), "master": ("opt", STR)})
# The Open_vSwitch row's external_ids (system-id, hostname, ovn-remote, ...): added for
# ML2/OVN hosts; reports written before it have no such key and still load.
OPEN_VSWITCH = ("dict", {"external_ids": ("opt", ("map", SCALAR))})
SOURCE = ("dict", {"ok": ("opt", BOOL)})
ERROR = ("dict", {"source": ("opt", SCALAR), "error": ("opt", SCALAR)})

SCHEMA: Node = (
    "dict",
    {
        "host": STR,
        "sources": ("opt", ("map", SOURCE)),
        "errors": ("opt", ("list", ERROR)),
        "domains": ("opt", ("list", DOMAIN)),
        "ovs_bridges": ("opt", ("list", BRIDGE)),
        "links": ("opt", ("list", LINK)),
        "iptables_chains": ("opt", ("list", STR)),
        "open_vswitch": ("opt", OPEN_VSWITCH),
    },
)


def _type_ok(kind: str, value: Any) -> bool:
    if kind == ANY:
        return True
    if kind == STR:
        return isinstance(value, str)
    if kind == BOOL:
        return isinstance(value, bool)
    return value is None or isinstance(value, (str, int, float, bool))  # SCALAR


def problem(report: Any) -> str | None:
    """The first way ``report`` departs from :data:`SCHEMA` (``field: expected``), or None."""
    stack: list[tuple[str, Node, Any]] = [("report", SCHEMA, report)]
    while stack:
        where, node, value = stack.pop()
        if isinstance(node, str):
            if not _type_ok(node, value):
                return f"{where}: expected {node}, found {type(value).__name__}"
            continue
        kind, inner = node
        if kind == "opt":
            if value is not None:
                stack.append((where, inner, value))
        elif kind == "list":
            if not isinstance(value, list):
                return f"{where}: expected a list, found {type(value).__name__}"
            stack.extend((f"{where}[{i}]", inner, v) for i, v in enumerate(value))
        elif kind == "map":
            if not isinstance(value, dict):
                return f"{where}: expected an object, found {type(value).__name__}"
            stack.extend((f"{where}.{k}", inner, v) for k, v in value.items())
        else:  # dict with known fields; others are allowed and ignored
            if not isinstance(value, dict):
                return f"{where}: expected an object, found {type(value).__name__}"
            for name, sub in inner.items():
                if name not in value:
                    if not (isinstance(sub, tuple) and sub[0] == "opt") and sub != ANY:
                        return f"{where}.{name}: missing"
                    continue
                stack.append((f"{where}.{name}", sub, value[name]))
    return None
