"""What a compute host really has wired: one collector per source, run by ``host-scan``.

Each collector returns its data or raises :class:`CollectError` with one line
saying what could not be read and why; the scan records that in the report
and goes on with the other sources.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

COMMAND_TIMEOUT = 60


class CollectError(Exception):
    """A source could not be read (tool missing, failed, or unparsable output)."""


def run(argv: Sequence[str], *, timeout: float = COMMAND_TIMEOUT) -> str:
    """Run a read-only command; its stdout, or CollectError with one clear line."""
    if shutil.which(argv[0]) is None:
        raise CollectError(f"{argv[0]} not found")
    try:
        # S603: a fixed argv of read-only tools (virsh -r, ovs-vsctl, ip), no shell
        done = subprocess.run(  # noqa: S603
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise CollectError(f"{argv[0]} did not answer within {timeout:g} s") from None
    except OSError as exc:
        raise CollectError(f"{argv[0]}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        first = (done.stderr or done.stdout).strip().splitlines()
        raise CollectError(
            f"{' '.join(argv[:3])} exited {done.returncode}"
            + (f": {first[0][:200]}" if first else "")
        )
    return done.stdout
