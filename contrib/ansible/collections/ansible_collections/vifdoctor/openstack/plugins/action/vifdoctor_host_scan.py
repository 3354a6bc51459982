# Copyright: vifdoctor developers
# Apache License 2.0 (see the vifdoctor repository)
"""Controller side of vifdoctor_host_scan: run the module, write the report on the controller.

One round trip per host: the report comes back in the module's result and is
written here, in the worker that ran the task, instead of a second ``fetch``
task (a stat and a transfer per host). When the host is unreachable or the scan
fails, a failure record takes the report's place, so the audit says why the
host has no report and never judges a stale one from an earlier run.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile

from ansible.errors import AnsibleConnectionFailure
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

FAILURE_FORMAT = "vifdoctor-host-scan-failure"
FACT = "vifdoctor_host_report"


def write_json(folder: str, name: str, document: dict) -> str:
    """Write ``folder/name.json`` whole or not at all (temporary file, then rename)."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}.json")
    fd, tmp = tempfile.mkstemp(prefix=".vifdoctor-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(document, fh, indent=1)
            fh.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def failure_record(host: str, inventory_hostname: str, reason: str, message: str) -> dict:
    return {
        "format": FAILURE_FORMAT,
        "format_version": 1,
        "host": host,
        "inventory_hostname": inventory_hostname,
        "failed_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "reason": reason,
        "message": message[:500],
    }


class ActionModule(ActionBase):
    """Runs the module on the host; with ``fetch_to`` writes its report on the controller."""

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        fetch_to = args.get("fetch_to")
        keep_fact = boolean(args.get("report_fact", True), strict=False)
        inventory_hostname = task_vars.get("inventory_hostname", "")
        host = args.get("host_name") or inventory_hostname
        folder = os.path.abspath(os.path.expanduser(fetch_to)) if fetch_to else None
        try:
            result.update(self._execute_module(
                module_name="vifdoctor.openstack.vifdoctor_host_scan", module_args=args,
                task_vars=task_vars))
        except AnsibleConnectionFailure as exc:
            if folder:
                write_json(folder, inventory_hostname,
                           failure_record(host, inventory_hostname, "unreachable", str(exc)))
            raise
        if folder:
            facts = result.get("ansible_facts") or {}
            if result.get("failed") or FACT not in facts:
                reason = result.get("reason") or ("unreachable" if result.get("unreachable")
                                                  else "host-scan failed")
                write_json(folder, inventory_hostname, failure_record(
                    host, inventory_hostname, reason, str(result.get("msg", ""))))
            else:
                result["fetched_to"] = write_json(folder, inventory_hostname, facts[FACT])
            if not keep_fact:
                result.pop("ansible_facts", None)
        return result
