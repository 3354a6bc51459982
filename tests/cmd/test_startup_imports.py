"""What a run imports before it needs it: every import is paid at each start (issue 14).

oslo.config (with rfc3986) is imported only when a config file is given; the CLI, the
library API and the repair path do not pull it in otherwise.
"""

from __future__ import annotations

import subprocess
import sys


def test_repair_path_does_not_import_oslo_config() -> None:
    code = (
        "import sys\n"
        "import vifdoctor.cmd.main, vifdoctor.cmd.repair, vifdoctor.api\n"
        "import vifdoctor.repair.workflow, vifdoctor.session, vifdoctor.audit\n"
        "print(sorted(m for m in sys.modules if m.startswith(('oslo_config', 'rfc3986'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
