#!/usr/bin/python
# Copyright: vifdoctor developers
# Apache License 2.0 (see the vifdoctor repository)
"""Ansible module: run ``vifdoctor host-scan`` on a compute host, return the report as a fact."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vifdoctor_host_scan
short_description: Record a compute host's live VIF wiring with vifdoctor host-scan
version_added: "0.1.0"
description:
  - Runs C(vifdoctor host-scan) on the managed host. It reads libvirt domains, Open vSwitch
    and the Linux links (and, with O(iptables), the neutron iptables chains) and changes
    nothing.
  - Returns the report as the fact C(vifdoctor_host_report).
  - A source the host cannot read (a missing tool, a stopped ovsdb-server) does not fail
    the task; the report is complete and its C(errors) list says what was not read.
  - With O(fetch_to), the action plugin of the same name writes the report on the
    controller as C(<fetch_to>/<inventory_hostname>.json), in the same round trip. When the
    host is unreachable or the scan fails, it writes a failure record there instead, so
    C(vifdoctor audit --host-reports) says why the host has no report (and never judges a
    stale report from an earlier run).
options:
  executable:
    description: The vifdoctor command on the host (a path, or a name looked up in PATH).
    type: str
    default: vifdoctor
  host_name:
    description:
      - The host name Neutron binds ports to (nova.conf C([DEFAULT] host)).
      - Default is the machine's host name.
    type: str
  libvirt_uri:
    description: libvirt connection URI; default is libvirt's own (C(qemu:///system) as root).
    type: str
  ovsdb:
    description: The OVSDB to read, for example C(unix:/run/openvswitch/db.sock).
    type: str
  iptables:
    description: Also record the neutron iptables chains (needed for VD307).
    type: bool
    default: false
  dest:
    description: Also keep the report on the host at this path (written whole or not at all).
    type: path
  fetch_to:
    description:
      - Controller folder the report is written into as C(<inventory_hostname>.json).
      - Handled by the action plugin on the controller, not sent to the host.
    type: path
  report_fact:
    description:
      - Return the report as the fact C(vifdoctor_host_report).
      - Set it to false on big fleets when O(fetch_to) is given, so the controller does
        not keep every host's report in memory.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    details: The scan only reads; check mode runs the same scan (O(dest) is not written).
  diff_mode:
    support: none
author:
  - vifdoctor developers
"""

EXAMPLES = r"""
- name: Scan the host and keep the report as a fact
  vifdoctor.openstack.vifdoctor_host_scan:
    executable: /opt/vifdoctor/bin/vifdoctor
    iptables: true
  become: true

- name: Scan and write reports/<inventory_hostname>.json on the controller
  vifdoctor.openstack.vifdoctor_host_scan:
    host_name: "{{ inventory_hostname }}"
    fetch_to: reports
    report_fact: false
  become: true
"""

RETURN = r"""
ansible_facts:
  description: The report, as C(vifdoctor_host_report) (only with O(report_fact)).
  returned: success and report_fact
  type: dict
  contains:
    vifdoctor_host_report:
      description: The host-scan report (format C(vifdoctor-host-scan), version 1; see docs/hosts.md).
      type: dict
complete:
  description: Whether every source was read (host-scan exit 0).
  returned: success
  type: bool
sources:
  description: Per source (libvirt, ovs, links, iptables), whether it was read and how.
  returned: success
  type: dict
errors:
  description: One item per source that could not be read, with the reason.
  returned: success
  type: list
  elements: dict
host:
  description: The host name the report is filed under.
  returned: success
  type: str
fetched_to:
  description: The controller path the report was written to (with O(fetch_to)).
  returned: success and fetch_to
  type: str
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule


def host_scan_argv(params: dict, executable: str) -> list:
    argv = [executable, "host-scan", "-o", params["dest"] or "-"]
    for option, flag in (("host_name", "--host-name"), ("libvirt_uri", "--libvirt-uri"),
                         ("ovsdb", "--ovsdb")):
        if params[option]:
            argv += [flag, params[option]]
    if params["iptables"]:
        argv.append("--iptables")
    return argv


def find_executable(module: AnsibleModule, name: str) -> str | None:
    if os.sep in name:
        return name if os.access(name, os.X_OK) and os.path.isfile(name) else None
    return module.get_bin_path(name)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "executable": {"type": "str", "default": "vifdoctor"},
            "host_name": {"type": "str"},
            "libvirt_uri": {"type": "str"},
            "ovsdb": {"type": "str"},
            "iptables": {"type": "bool", "default": False},
            "dest": {"type": "path"},
            "fetch_to": {"type": "path"},
            "report_fact": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    params = dict(module.params)
    if module.check_mode:
        params["dest"] = None  # the same read-only scan; nothing is written on the host
    executable = find_executable(module, params["executable"])
    if executable is None:
        module.fail_json(msg=f"vifdoctor is not installed here: {params['executable']!r} "
                             "not found (install vifdoctor on the host, or set the "
                             "executable / vifdoctor_bin to its path)",
                         reason="no vifdoctor")
    rc, out, err = module.run_command(host_scan_argv(params, executable))
    if rc not in (0, 1):
        last = (err or out).strip().splitlines()
        module.fail_json(msg=f"vifdoctor host-scan exited {rc}: {last[-1] if last else ''}"[:500],
                         rc=rc, reason="host-scan failed")
    try:
        if params["dest"]:
            with open(params["dest"], encoding="utf-8") as fh:
                report = json.load(fh)
        else:
            report = json.loads(out)
    except (OSError, ValueError) as exc:
        module.fail_json(msg=f"could not read host-scan's report: {exc}", rc=rc,
                         reason="host-scan failed")
    if not isinstance(report, dict) or report.get("format") != "vifdoctor-host-scan":
        module.fail_json(msg="host-scan did not write a vifdoctor host-scan report", rc=rc,
                         reason="host-scan failed")
    errors = report.get("errors") or []
    for item in errors:
        module.warn(f"host-scan could not read {item.get('source')}: {item.get('error')}")
    result = {
        "changed": False,
        "complete": rc == 0,
        "sources": report.get("sources") or {},
        "errors": errors,
        "host": report.get("host"),
    }
    if params["report_fact"] or params["fetch_to"]:
        # the action plugin takes the report from here (and drops it unless report_fact)
        result["ansible_facts"] = {"vifdoctor_host_report": report}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
