"""The OVN lab as a pytest fixture: a fresh NB + SB + ovn-northd per test.

The lab itself is vifdoctor/demo/ovnlab.py (``vifdoctor demo --ovn`` uses it too).
Nothing here skips: missing OVN tools fail the test with the Debian package names.

Use: ``pytest_plugins = ["testkit.ovnlab"]`` in a test module, then the ``ovn_lab`` fixture.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vifdoctor.demo.ovnlab import (  # noqa: F401 - re-exported for the tests
    TIMINGS,
    OvnLab,
    OvnLabError,
    missing_prerequisites,
    ovn_lab_running,
)


@pytest.fixture
def ovn_lab() -> Iterator[OvnLab]:
    """A fresh NB + SB + northd, torn down even when the test fails (kept with
    VIFDOCTOR_KEEP_LAB)."""
    lab = OvnLab()
    try:
        try:
            lab.start()
        except OvnLabError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield lab
    finally:
        lab.stop()


def pytest_terminal_summary(terminalreporter) -> None:
    if not TIMINGS:
        return
    terminalreporter.section("OVN lab timings")
    for key, values in TIMINGS.items():
        terminalreporter.write_line(
            f"{key}: n={len(values)} mean={sum(values) / len(values):.3f}s max={max(values):.3f}s"
        )
