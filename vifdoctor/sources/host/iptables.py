"""The neutron security-group chains present (``iptables-save``), per port prefix."""

from __future__ import annotations

from vifdoctor.sources.host import run


def collect() -> list[str]:
    """Every chain name in the filter table whose agent prefix is neutron's."""
    text = run(["iptables-save", "-t", "filter"])
    chains = []
    for line in text.splitlines():
        if line.startswith(":neutron-"):
            chains.append(line[1:].split(" ", 1)[0])
    return sorted(set(chains))
