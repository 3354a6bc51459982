#!/usr/bin/python
# Copyright: vifdoctor developers
# Apache License 2.0 (see the vifdoctor repository)
"""Ansible module: run vifdoctor's audit from the controller through ``vifdoctor.api``."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vifdoctor_audit
short_description: Audit Neutron's port bindings (with Nova and host reports) with vifdoctor
version_added: "0.1.0"
description:
  - Runs C(vifdoctor audit) through the library C(vifdoctor.api.audit) on the host the task
    runs on, normally the controller (C(delegate_to=localhost), or a play on C(localhost)).
    vifdoctor must be importable by that host's Python (C(ansible_python_interpreter)).
  - It only reads, and never writes to a database.
  - Fails the task on the exit-code policy of O(fail_on).
  - The database URLs are never printed or returned (they carry passwords).
options:
  neutron_db:
    description: Neutron database URL (C(mysql+pymysql://), C(postgresql://), C(sqlite:///)).
    type: str
  neutron_config_file:
    description: neutron.conf files (later files win).
    type: list
    elements: path
    default: []
  os_cloud:
    description: Read Neutron (and Nova) through the APIs with this clouds.yaml entry.
    type: str
  nova_db:
    description: Nova cell database URLs.
    type: list
    elements: str
    default: []
  nova_api_db:
    description: Nova API database URL (cells found through cell_mappings).
    type: str
  nova_config_file:
    description: nova.conf files.
    type: list
    elements: path
    default: []
  host_reports:
    description:
      - Folder of host-scan reports (the role's C(vifdoctor_reports_dir)).
      - Hosts Neutron binds VM ports to that have no report (or a failure record) are
        listed in RV(hosts_without_report).
    type: path
  firewall_driver:
    description: Firewall driver of agents that do not report C(ovs_hybrid_plug).
    type: str
    choices: [iptables_hybrid, openvswitch, noop, iptables]
  nova_generation:
    description: C(modern) (Ussuri+) or C(legacy) (Icehouse..Train).
    type: str
    choices: [modern, legacy]
    default: modern
  nova_firewall_driver:
    description: Legacy Nova's firewall_driver.
    type: str
  agent_down_time:
    description: Seconds after which an agent without heartbeat is dead (default 75).
    type: float
  host:
    description: Only these hosts.
    type: list
    elements: str
    default: []
  port:
    description: Only these ports.
    type: list
    elements: str
    default: []
  network:
    description: Only these networks.
    type: list
    elements: str
    default: []
  project:
    description: Only these projects.
    type: list
    elements: str
    default: []
  code:
    description: Only these finding codes.
    type: list
    elements: str
    default: []
  fail_on:
    description:
      - C(failure) fails the task when a failure-severity finding is made (exit code 2),
        C(warning) also on warnings (exit code 1), C(never) only when the audit cannot run.
    type: str
    choices: [failure, warning, never]
    default: failure
  max_findings:
    description: Return at most this many findings (failures first); 0 returns none.
    type: int
    default: 1000
  report_file:
    description: Also write the full JSON document (every finding) to this path.
    type: path
attributes:
  check_mode:
    support: full
    details: The audit only reads; check mode runs the same audit.
  diff_mode:
    support: none
author:
  - vifdoctor developers
"""

EXAMPLES = r"""
- name: Audit the fleet from the controller
  vifdoctor.openstack.vifdoctor_audit:
    neutron_db: "{{ vault_neutron_db_url }}"
    nova_api_db: "{{ vault_nova_api_db_url }}"
    host_reports: reports
    fail_on: warning
  delegate_to: localhost
  run_once: true
  register: audit
"""

RETURN = r"""
summary:
  description: Counts by code, severity and host, and the exit code (as C(vifdoctor audit -f json)).
  returned: when the audit ran
  type: dict
findings:
  description: The findings, failures first (at most O(max_findings)).
  returned: when the audit ran
  type: list
  elements: dict
findings_returned:
  description: How many findings are in RV(findings) (RV(summary.findings) counts them all).
  returned: when the audit ran
  type: int
exit_code:
  description: 0 nothing above info, 1 warnings only, 2 any failure (as the CLI).
  returned: when the audit ran
  type: int
assumptions:
  description: What the verdicts rest on (defaults taken, sources that could not be read).
  returned: when the audit ran
  type: list
  elements: str
hosts_without_report:
  description: Hosts Neutron binds VM ports to with no usable host report, and why.
  returned: with host_reports
  type: dict
schema:
  description: The Neutron source and its schema layout (no password).
  returned: when the audit ran
  type: dict
"""

import itertools
import json

from ansible.module_utils.basic import AnsibleModule

_FAIL_AT = {"failure": 2, "warning": 1, "never": 99}
_URL_OPTIONS = ("neutron_db", "nova_db", "nova_api_db")
_AUDIT_OPTIONS = ("neutron_db", "neutron_config_file", "os_cloud", "nova_db", "nova_api_db",
                  "nova_config_file", "host_reports", "firewall_driver", "nova_generation",
                  "nova_firewall_driver", "agent_down_time", "host", "port", "network",
                  "project", "code")


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "neutron_db": {"type": "str", "no_log": True},
            "neutron_config_file": {"type": "list", "elements": "path", "default": []},
            "os_cloud": {"type": "str"},
            "nova_db": {"type": "list", "elements": "str", "no_log": True, "default": []},
            "nova_api_db": {"type": "str", "no_log": True},
            "nova_config_file": {"type": "list", "elements": "path", "default": []},
            "host_reports": {"type": "path"},
            "firewall_driver": {"type": "str",
                                "choices": ["iptables_hybrid", "openvswitch", "noop",
                                            "iptables"]},
            "nova_generation": {"type": "str", "choices": ["modern", "legacy"],
                                "default": "modern"},
            "nova_firewall_driver": {"type": "str"},
            "agent_down_time": {"type": "float"},
            "host": {"type": "list", "elements": "str", "default": []},
            "port": {"type": "list", "elements": "str", "default": []},
            "network": {"type": "list", "elements": "str", "default": []},
            "project": {"type": "list", "elements": "str", "default": []},
            "code": {"type": "list", "elements": "str", "default": []},
            "fail_on": {"type": "str", "choices": ["failure", "warning", "never"],
                        "default": "failure"},
            "max_findings": {"type": "int", "default": 1000},
            "report_file": {"type": "path"},
        },
        supports_check_mode=True,
    )
    try:
        from vifdoctor import api
        from vifdoctor.errors import VifdoctorError
        from vifdoctor.report import renderer
        from vifdoctor.report.findings import audit_listing
    except ImportError as exc:
        module.fail_json(msg=f"vifdoctor is not importable by this Python ({exc}): install it "
                             "on the controller, or point ansible_python_interpreter at the "
                             "Python that has it")
    kwargs = {k: module.params[k] for k in _AUDIT_OPTIONS
              if module.params[k] not in (None, [], ())}
    try:
        report = api.audit(**kwargs)
        summary = report.summary()
        limit = max(module.params["max_findings"], 0)
        findings = list(itertools.islice(report.findings, limit))
        if module.params["report_file"]:
            with open(module.params["report_file"], "w", encoding="utf-8") as fh:
                renderer("json")(audit_listing(report), fh)
        document = report.document()
    except VifdoctorError as exc:
        module.fail_json(msg=f"vifdoctor audit could not run: {exc}", exit_code=3)
    except OSError as exc:
        module.fail_json(msg=f"cannot write {module.params['report_file']}: {exc}")
    result = {
        "changed": False,
        "summary": summary,
        "findings": findings,
        "findings_returned": len(findings),
        "exit_code": report.exit_code,
        "assumptions": document["assumptions"],
        "schema": document["schema"],
    }
    if "host_reports" in document:
        result["hosts_without_report"] = document["host_reports"].get("missing", {})
    if report.exit_code >= _FAIL_AT[module.params["fail_on"]]:
        by_severity = json.dumps(summary.get("by_severity", {}), sort_keys=True)
        module.fail_json(msg=f"vifdoctor audit exit code {report.exit_code} "
                             f"(fail_on: {module.params['fail_on']}): {by_severity}",
                         **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
