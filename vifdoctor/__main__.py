"""``python -m vifdoctor``."""

from vifdoctor.cmd.main import run_as_command

run_as_command()
