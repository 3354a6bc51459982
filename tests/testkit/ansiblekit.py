"""Ansible run by the tests: confined to the test's folder, with the repo's collection."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / "contrib" / "ansible" / "collections"
COLLECTION = COLLECTIONS / "ansible_collections" / "vifdoctor" / "openstack"
VENV_BIN = Path(sys.executable).parent


def ansible_env(tmp: Path) -> dict:
    """Ansible confined to the test: its own home and temp, the repo's collection, no
    vifdoctor on PATH (each host names its own), results recorded as JSON by the
    tests' ``record`` callback (ansible-core has no JSON output of its own)."""
    home = tmp / "ansible-home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(home),
        "ANSIBLE_HOME": str(home),
        "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
        "ANSIBLE_REMOTE_TEMP": str(home / "rtmp"),
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "ANSIBLE_CALLBACK_PLUGINS": str(REPO / "tests" / "integration" / "ansible_plugins"),
        "ANSIBLE_CALLBACKS_ENABLED": "record",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "VIFDOCTOR_ANSIBLE_RECORD": str(tmp / "ansible-record.json"),
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        # the vifdoctor under test first, for the controller's and the hosts' Python
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
