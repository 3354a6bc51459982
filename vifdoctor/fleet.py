"""The fleet as Neutron sees it: the compute hosts that have VM ports.

What an inventory of the hosts to scan is built from (the
``vifdoctor.openstack.neutron_hosts`` inventory plugin calls this), so a scan
covers exactly the hosts whose wiring matters. Read-only, through the same
sources as the audit (a database or the API).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from vifdoctor.options import SourceOptions
from vifdoctor.session import neutron_session


def compute_hosts(options: SourceOptions | None = None, /, **kwargs: Any) -> dict[str, int]:
    """Each host Neutron binds a VM port to (live bindings), with its number of VM ports.

    Takes the options of any read (``neutron_db``, ``neutron_config_file``,
    ``os_cloud``, selectors) as a :class:`~vifdoctor.options.SourceOptions` or
    keyword arguments named as the long flags. Hosts come sorted by name.
    """
    opts = SourceOptions.of(options, **kwargs)
    counts: Counter[str] = Counter()
    with neutron_session(opts) as s:
        for binding in s.source.compute_bindings_by_device(s.selectors):
            if binding.host:
                counts[binding.host] += 1
    return dict(sorted(counts.items()))
