# A test-only Ansible callback: every task result and the play recap, as one JSON file.
# ansible-core has no JSON stdout callback of its own (it lives in ansible.posix).
from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: record
type: aggregate
short_description: write task results and stats to $VIFDOCTOR_ANSIBLE_RECORD (tests only)
description: [Used by vifdoctor's tests to read what ansible-playbook did.]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "record"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self.tasks: dict[str, dict[str, dict]] = {}

    def _add(self, result, **flags) -> None:
        data = dict(result._result)
        data.update(flags)
        name = result._task.get_name()
        self.tasks.setdefault(name, {})[result._host.get_name()] = data

    def v2_runner_on_ok(self, result) -> None:
        self._add(result)

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self._add(result, failed=True, ignored=ignore_errors)

    def v2_runner_on_unreachable(self, result) -> None:
        self._add(result, unreachable=True)

    def v2_runner_on_skipped(self, result) -> None:
        self._add(result, skipped=True)

    def v2_playbook_on_stats(self, stats) -> None:
        summary = {h: stats.summarize(h) for h in sorted(stats.processed)}
        with open(os.environ["VIFDOCTOR_ANSIBLE_RECORD"], "w", encoding="utf-8") as fh:
            json.dump({"tasks": self.tasks, "stats": summary}, fh, default=str)
