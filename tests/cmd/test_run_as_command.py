"""``python -m vifdoctor`` ends with os._exit after a run (issue 14): the interpreter's
teardown and freeing a 100,000-row report object by object took 0.3-0.7 s. Nothing a
normal exit does may be lost: every byte of output through a pipe, the exit code, the
exit handlers (logging, temporary files), a thread that is not a daemon.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from testkit.repairkit import cli, drifted_cloud, install

from vifdoctor import collector

ROOT = str(Path(__file__).resolve().parents[2])


def _python(code: str, *, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=env
    )


def test_output_through_a_pipe_is_whole_and_the_code_kept(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    install(url, drifted_cloud(3000, hosts=4), "icehouse")  # about 1.5 MB of JSON
    env = dict(os.environ, PYTHONPATH=ROOT)
    run = subprocess.run(
        [sys.executable, "-m", "vifdoctor", "plan", "--neutron-db", url, "-f", "json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    assert len(json.loads(run.stdout)["changes"]) == 3000
    missing = subprocess.run(
        [sys.executable, "-m", "vifdoctor", "plan", "--neutron-db", url + ".gone"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert missing.returncode == 3 and len(missing.stderr.splitlines()) == 1


def test_exit_handlers_run_and_threads_are_waited_for(tmp_path: Path) -> None:
    code = (
        "import atexit, sys, threading, time\n"
        "from vifdoctor.cmd.main import run_as_command\n"
        "atexit.register(lambda: print('handler ran', file=sys.stderr))\n"
        "def late():\n"
        "    time.sleep(0.3)\n"
        "    open('late.txt', 'w').write('done')\n"
        "threading.Thread(target=late).start()\n"  # not a daemon: the exit waits for it
        "run_as_command(['explain', 'VD101'])\n"
    )
    run = _python(code, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "VD101" in run.stdout
    assert "handler ran" in run.stderr
    assert (tmp_path / "late.txt").read_text() == "done"
    alone = _python(code.replace("threading.Thread(target=late).start()\n", ""), cwd=tmp_path)
    assert alone.returncode == 0 and "handler ran" in alone.stderr and "VD101" in alone.stdout


def test_in_process_runs_free_their_reports(capsys, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'neutron.sqlite'}"
    install(url, drifted_cloud(3), "icehouse")
    code, _, err = cli(capsys, "plan", "--neutron-db", url)
    assert code == 0, err
    assert collector._kept is None  # only run_as_command keeps them, and then exits
