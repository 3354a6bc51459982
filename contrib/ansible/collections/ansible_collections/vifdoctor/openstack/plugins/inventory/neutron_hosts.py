# Copyright: vifdoctor developers
# Apache License 2.0 (see the vifdoctor repository)
"""Inventory plugin: the compute hosts that have VM ports, from Neutron's bindings."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: neutron_hosts
short_description: The compute hosts that have VM ports in Neutron's bindings
version_added: "0.1.0"
description:
  - Lists every host Neutron binds a VM port (C(device_owner compute:*)) to, read-only
    through vifdoctor's sources (C(vifdoctor.fleet.compute_hosts)), from a Neutron database or,
    with O(os_cloud), the API. A host-scan then covers exactly the hosts that matter.
  - Each host gets C(vifdoctor_host_name) (the name Neutron binds to) and
    C(vifdoctor_vm_ports).
  - A host the inventory cannot reach (its name does not resolve, it has no address in
    O(host_map), and no earlier inventory source lists it) is put in
    O(unreachable_group) and named in a warning. With O(include_unreachable) it stays in
    O(group) too, so the scan records it as unreachable and the audit says so.
  - vifdoctor must be importable by the Python that runs Ansible on the controller.
  - The file must be named C(*.neutron_hosts.yml) or C(*.neutron_hosts.yaml).
options:
  plugin:
    description: The name of this plugin.
    required: true
    choices: [vifdoctor.openstack.neutron_hosts]
    type: str
  neutron_db:
    description:
      - Neutron database URL; default the environment variable C(VIFDOCTOR_NEUTRON_DB).
      - It carries a password; it is never shown.
    type: str
    env:
      - name: VIFDOCTOR_NEUTRON_DB
  neutron_config_file:
    description: neutron.conf files (C([database] connection)).
    type: list
    elements: path
    default: []
  os_cloud:
    description: Read Neutron's API with this clouds.yaml entry instead of its database.
    type: str
  host:
    description: Only these Neutron hosts.
    type: list
    elements: str
    default: []
  group:
    description: The group the hosts go in (the host_scan playbook runs on C(compute)).
    type: str
    default: compute
  unreachable_group:
    description: The group of the hosts the inventory cannot reach.
    type: str
    default: vifdoctor_unreachable
  include_unreachable:
    description: Keep unreachable hosts in O(group) as well, so the scan records them.
    type: bool
    default: true
  host_map:
    description: Neutron host name to the address Ansible connects to (C(ansible_host)).
    type: dict
    default: {}
  resolve:
    description: A host is reachable only if its name (or its O(host_map) address) resolves.
    type: bool
    default: true
"""

EXAMPLES = r"""
# fleet.neutron_hosts.yml
plugin: vifdoctor.openstack.neutron_hosts
neutron_config_file:
  - /etc/neutron/neutron.conf
host_map:
  cmp017: 10.0.3.17
# ansible-inventory -i fleet.neutron_hosts.yml --graph
# ansible-playbook -i fleet.neutron_hosts.yml vifdoctor.openstack.host_scan -f 50
"""

import socket
from concurrent.futures import ThreadPoolExecutor

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin


def resolves(name: str) -> bool:
    try:
        socket.getaddrinfo(name, None)
    except (OSError, UnicodeError):
        return False
    return True


class InventoryModule(BaseInventoryPlugin):
    """Hosts with VM ports, from Neutron; the unreachable ones grouped and reported."""

    NAME = "vifdoctor.openstack.neutron_hosts"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(
            ("neutron_hosts.yml", "neutron_hosts.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        try:
            from vifdoctor.errors import VifdoctorError
            from vifdoctor.fleet import compute_hosts
        except ImportError as exc:
            raise AnsibleParserError(
                f"vifdoctor is not importable by the Python running Ansible ({exc})") from None
        options = {k: self.get_option(k) for k in ("neutron_db", "neutron_config_file",
                                                   "os_cloud", "host")}
        try:
            hosts = compute_hosts(**{k: v for k, v in options.items() if v})
        except VifdoctorError as exc:  # one line, the password masked
            raise AnsibleParserError(f"vifdoctor could not read Neutron: {exc}") from None
        host_map = self.get_option("host_map") or {}
        group = self.inventory.add_group(self.get_option("group"))
        lost_group = self.inventory.add_group(self.get_option("unreachable_group"))
        known = set(self.inventory.hosts)  # listed by an earlier inventory source
        todo = [h for h in hosts if h not in known]
        if self.get_option("resolve"):
            with ThreadPoolExecutor(max_workers=32) as pool:
                ok = dict(zip(todo, pool.map(
                    lambda h: resolves(str(host_map.get(h, h))), todo)))
        else:
            ok = {h: True for h in todo}
        lost = []
        for host, ports in hosts.items():
            reachable = host in known or ok.get(host, False)
            if reachable or self.get_option("include_unreachable"):
                self.inventory.add_host(host, group=group)
            if not reachable:
                self.inventory.add_host(host, group=lost_group)
                lost.append(host)
            self.inventory.set_variable(host, "vifdoctor_host_name", host)
            self.inventory.set_variable(host, "vifdoctor_vm_ports", ports)
            if host in host_map:
                self.inventory.set_variable(host, "ansible_host", str(host_map[host]))
        if lost:
            shown = ", ".join(lost[:20]) + (f" and {len(lost) - 20} more" if len(lost) > 20
                                            else "")
            self.display.warning(
                f"Neutron binds VM ports to {len(lost)} host(s) this inventory cannot reach "
                f"(name does not resolve, no host_map address): {shown}; they are in group "
                f"{self.get_option('unreachable_group')}")
