"""Nova's cells read by a second process, beside the audit of Neutron's side.

A million-port audit with Nova spent half its time on Nova's side alone: reading
800 MB of ``network_info`` through PyMySQL, sorting it through disk runs by uuid
and parsing it (issue 14). None of that needs Neutron, so a worker process does it
on the machine's other core while this one reads and judges Neutron's ports: it runs
the same :class:`NovaCells` stream (same queries, same byte-wise uuid order, same
migrations), parses each cache as Nova does and sends back only what the rules
read of it (``model.VIF_KEYS``), in pickled frames over a pipe.

The worker is used where it pays (``VIFDOCTOR_NOVA_WORKER``: ``auto``, the default,
when the cells hold at least WORKER_MIN_INSTANCES instances, the process may use two
CPUs and ``sys.executable`` is a Python; ``1`` always; ``0`` never). Database URLs
reach it on its stdin, never in its arguments (its environment is the audit's own).
Whatever stops it is one clear error here, as it would have been in-process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import IO, Any

from sqlalchemy.exc import SQLAlchemyError

from vifdoctor.errors import VifdoctorError
from vifdoctor.model import CachedVifs, Instance, read_cached_vifs
from vifdoctor.sources.database import db_error, scrub
from vifdoctor.sources.nova_db import CellSource, NovaCells

LOG = logging.getLogger(__name__)
ENV_WORKER = "VIFDOCTOR_NOVA_WORKER"
WORKER_MIN_INSTANCES = 20_000  # below, starting a process costs more than it saves
FRAME_ROWS = 500  # instances per frame: a frame is about 100 KB
FRAME_BYTES = 2**20  # of caches' text per frame, at most about: huge caches go a few at a time
PIPE_BYTES = 2**20  # the pipe's buffer, where Linux lets us set it: fewer hand-overs
_OFF = "set VIFDOCTOR_NOVA_WORKER=0 to read Nova in the audit's own process"


def wanted(cells: NovaCells) -> bool:
    """Whether the audit should read these cells through a worker process."""
    setting = os.environ.get(ENV_WORKER, "auto").strip().lower()
    if setting in ("0", "no", "off", "false"):
        return False
    if setting in ("1", "yes", "on", "true"):
        return True
    if not _is_python(sys.executable):  # embedded (uWSGI, ...): no interpreter to start
        return False
    if _usable_cpus() < 2:  # one core: the two processes would take turns, at a cost
        return False
    return cells.instance_count(WORKER_MIN_INSTANCES) >= WORKER_MIN_INSTANCES


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _is_python(executable: str | None) -> bool:
    name = os.path.basename(os.path.realpath(executable)) if executable else ""
    return name.startswith(("python", "pypy"))


class WorkerNovaCells(NovaCells):
    """NovaCells whose instance stream comes from a worker process where that pays
    (describe, the clock, the repair's look-ups and the migrations flag stay here)."""

    def __init__(self, cells: list[CellSource]):
        self.sources = cells
        self.use_worker = False
        self._proc: subprocess.Popen[bytes] | None = None
        super().__init__(cells)  # closes what it opened if a cell cannot be read
        try:
            self.use_worker = wanted(self)
        except Exception:
            self.close()
            raise

    def instances(self) -> Iterator[Instance]:
        """Start the worker now (it reads while the caller does other work) and stream
        what it sends; or this process's own stream."""
        if not self.use_worker:
            return super().instances()
        LOG.info("Nova cells read by a worker process (%s)", ENV_WORKER)
        self._proc = _start(self.sources)
        return _receive(self._proc)

    def close(self) -> None:
        _stop(self._proc)
        self._proc = None
        super().close()


def _start(cells: list[CellSource]) -> subprocess.Popen[bytes]:
    """The worker, reading the cells from its stdin and framing rows on a pipe of its own
    (not its stdout, which anything it loads could print to)."""
    env = dict(os.environ)
    # the modules this process imported, wherever they came from (PYTHONPATH, a venv, ...)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    read_end, write_end = os.pipe()
    try:
        with contextlib.suppress(ImportError, AttributeError, OSError):
            import fcntl  # Linux: a larger pipe; elsewhere a smaller one is slower, not wrong

            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        proc = subprocess.Popen(  # noqa: S603 - this interpreter, our own module
            [sys.executable, "-m", "vifdoctor.sources.nova_worker", str(write_end)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            pass_fds=(write_end,),
            env=env,
        )
    except OSError as exc:
        os.close(read_end)
        raise VifdoctorError(f"cannot start the Nova worker process: {exc}; {_OFF}") from None
    finally:
        os.close(write_end)  # the worker's now: its end of file is the worker's exit
    proc.stdout = os.fdopen(read_end, "rb")
    assert proc.stdin is not None
    try:
        proc.stdin.write(json.dumps([[c.name, c.url, c.prefix] for c in cells]).encode())
        proc.stdin.close()
    except OSError:
        pass  # it died at once: _receive reports how
    return proc


def _receive(proc: subprocess.Popen[bytes]) -> Iterator[Instance]:
    """The worker's instances, in its (uuid) order; its failure as one VifdoctorError."""
    assert proc.stdout is not None
    try:
        while True:
            frame = _read_frame(proc.stdout)
            if frame is None:
                code = proc.wait()
                raise VifdoctorError(
                    f"the Nova worker process stopped (exit code {code}) before it had "
                    f"read every instance; {_OFF}"
                )
            kind, payload = frame
            if kind == "end":
                proc.wait()
                LOG.info(
                    "Nova worker done: peak RSS %.1f MB, CPU %.2f s (%.2f s of it before "
                    "its first instance: reading and sorting)",
                    payload["peak_rss_kb"] / 1024,
                    payload["cpu_s"],
                    payload.get("first_cpu_s", 0.0),
                )
                return
            if kind == "error":
                proc.wait()
                raise VifdoctorError(str(payload))
            for row in payload:
                yield _instance(row)
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None:
        return
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _read_frame(stream: IO[bytes]) -> tuple[str, Any] | None:
    """One frame, or None at the worker's end. A buffered pipe's ``read(n)`` returns
    fewer than n bytes only at its end of file."""
    head = stream.read(4)
    if len(head) < 4:
        return None
    size = int.from_bytes(head, "big")
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)  # noqa: S301 - our own child, over our own pipe


def _write_frame(stream: IO[bytes], kind: str, payload: Any) -> None:
    data = pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(4, "big") + data)


class _Shared:
    """Equal values sent as one object: pickle writes an object it has written before
    as a reference, which the audit's process unpickles for almost nothing (issue 14:
    unpickling the rows was a tenth of the Nova join, the audit's busier side). Most
    instances share their host, states and VIF type, and their VIFs share a few
    ``details`` objects. Equal here is exact: strings by value, details by ``repr``
    (``True`` and ``1``, ``1`` and ``1.0`` differ in it). The audit never changes a
    cached VIF's details (the rules copy what they change), so sharing them is safe."""

    LIMIT = 4096  # distinct values kept: a cloud of unique details stays bounded

    def __init__(self) -> None:
        self.values: dict[Any, Any] = {}

    def __call__(self, value: Any, key: Any = None) -> Any:
        if value is None:
            return None
        key = value if key is None else key
        found = self.values.get(key)
        if found is not None:
            return found
        if len(self.values) >= self.LIMIT:
            self.values.clear()
        self.values[key] = value
        return value


def _row(inst: Instance, shared: _Shared | None = None) -> tuple:
    """One instance as the worker sends it: each cached VIF cut to VIF_KEYS (the rules
    read nothing else of it: ``read_cached_vifs``), the raw text kept only where it
    could not be read (VD205 quotes it). The cut VIFs go as dicts: unpickled in C,
    where building them from tuples would be Python's work in the audit's process,
    the busier of the two. Equal values are sent as one object (``shared``)."""
    same = shared if shared is not None else _Shared()
    cache = read_cached_vifs(inst.network_info)
    vifs = {}
    for pid, cut in cache.vifs.items():
        if isinstance(cut.get("type"), str):
            cut["type"] = same(cut["type"])
        details = cut.get("details")
        if isinstance(details, dict):
            cut["details"] = same(details, ("details", repr(details)))
        if cut.get("ovs_interfaceid") == pid:
            cut["ovs_interfaceid"] = pid  # the same text: the key's object
        vifs[pid] = cut
    return (
        inst.uuid,
        same(inst.cell),
        inst.name,
        same(inst.host),
        same(inst.node),
        same(inst.vm_state),
        inst.power_state,
        same(inst.task_state),
        inst.deleted,
        inst.hidden,
        inst.network_info if cache.error else None,
        vifs,
        cache.error,
        inst.migrations,
    )


def _instance(row: tuple) -> Instance:
    (uuid, cell, name, host, node, vm_state, power, task, deleted, hidden) = row[:10]
    raw, vifs, error, moves = row[10:]
    # by position, in Instance's field order: keywords cost twice as much
    return Instance(
        uuid,
        cell,
        name,
        host,
        node,
        vm_state,
        power,
        task,
        deleted,
        raw,  # network_info
        True,  # cache_known
        hidden,
        moves,  # migrations
        CachedVifs(vifs, error),
    )


def serve(source: IO[bytes], sink: IO[bytes]) -> int:
    """The worker's side: the cells named on ``source``, streamed to ``sink``."""
    try:
        cells = [CellSource(*c) for c in json.loads(source.read())]
        nova = NovaCells(cells)
        try:
            frame: list[tuple] = []
            size = 0
            shared = _Shared()
            first_cpu = 0.0  # its CPU before the first instance: the read and the sort
            for inst in nova.instances():
                first_cpu = first_cpu or time.process_time()
                frame.append(_row(inst, shared))
                size += len(inst.network_info or "")  # what the row holds, at most
                if len(frame) >= FRAME_ROWS or size >= FRAME_BYTES:
                    _write_frame(sink, "rows", frame)
                    frame, size = [], 0
            if frame:
                _write_frame(sink, "rows", frame)
        finally:
            nova.close()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        # what it used: with the audit's own, whether two cores or the server set the pace
        _write_frame(
            sink,
            "end",
            {
                "peak_rss_kb": usage.ru_maxrss,
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "first_cpu_s": first_cpu,
            },
        )
    except BrokenPipeError:
        return 1  # the audit stopped reading: nothing to tell it
    except VifdoctorError as exc:
        _write_frame(sink, "error", str(exc))
    except SQLAlchemyError as exc:
        _write_frame(sink, "error", f"database: {db_error(exc)}")
    except Exception as exc:  # a bug of ours: still one line in the audit's process
        _write_frame(
            sink,
            "error",
            f"internal error in the Nova worker process: {type(exc).__name__}: "
            f"{scrub(str(exc))[:300]}; {_OFF}",
        )
    sink.flush()
    return 0


def main() -> int:
    """``python -m vifdoctor.sources.nova_worker FD``: frames go to file descriptor FD."""
    with os.fdopen(int(sys.argv[1]), "wb") as sink:
        return serve(sys.stdin.buffer, sink)


__all__ = ["WorkerNovaCells", "wanted", "serve"]

if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C reaches the whole group: the audit says so
        sys.exit(130)
