"""A venv that sees another venv's packages and gets this checkout pip-installed for real.

For the plugin tests: neutron-status and the openstack client find vifdoctor
through its entry points, which only an installed distribution declares (the
shared .venv's editable install is /work/main's, not this checkout's). The new
venv reads the base venv's site-packages through a ``.pth`` file, so pip
installs only vifdoctor and what the base lacks, as ``pip install vifdoctor``
would into that environment, without touching the shared venv.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _purelib(python: Path) -> str:
    return subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def overlay_venv(base_python: Path, dest: Path) -> Path:
    """Create ``dest`` over ``base_python``'s packages, pip install this checkout; its python."""
    subprocess.run(["python3", "-m", "venv", str(dest)], check=True)
    python = dest / "bin" / "python"
    Path(_purelib(python), "zz-base-venv.pth").write_text(_purelib(base_python) + "\n")
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(REPO)], capture_output=True, text=True
    )
    if pip.returncode != 0:
        pytest.fail(
            f"pip install of this checkout over {base_python} failed:\n{pip.stderr[-3000:]}",
            pytrace=False,
        )
    return python
