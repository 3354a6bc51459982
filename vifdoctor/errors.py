"""Errors that end a command with one clear line and exit code 3 (could not run)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_WARNING = 1
EXIT_FAILURE = 2
EXIT_CANNOT_RUN = 3


class VifdoctorError(Exception):
    """A problem the operator must fix before vifdoctor can run: shown as one line."""

    exit_code = EXIT_CANNOT_RUN


class UnsupportedSchema(VifdoctorError):
    """The database is reachable but is not a Neutron ML2 schema vifdoctor knows."""
