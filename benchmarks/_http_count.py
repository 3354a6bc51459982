"""Run vifdoctor and count the HTTP requests it makes (benchmarks/api_mode.py).

    python benchmarks/_http_count.py OUT.json ARGS...   # = vifdoctor ARGS..., plus OUT.json

Every request openstacksdk sends goes through ``requests.Session.send``: timed there
(response body included), by method and path shape (ids replaced by ``{id}``). OUT.json
holds, per shape, the count, the seconds spent waiting on the servers summed over every
thread, and the span from the first request's start to the last one's end: what the
audit's wall time owes to the servers, against what it spends on its own.
"""

from __future__ import annotations

import atexit
import json
import re
import sys
import threading
import time
from urllib.parse import urlsplit

import requests

_ID = re.compile(r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?=/|$)")
_STATS: dict[str, dict] = {}
_LOCK = threading.Lock()
_REAL_SEND = requests.Session.send
_START = time.perf_counter()


def _send(self: requests.Session, request: requests.PreparedRequest, **kw: object):
    """The real send, timed (the body is read inside it unless streamed)."""
    t0 = time.perf_counter()
    try:
        return _REAL_SEND(self, request, **kw)
    finally:
        t1 = time.perf_counter()
        shape = f"{request.method} {_ID.sub('/{id}', urlsplit(request.url or '').path)}"
        with _LOCK:
            s = _STATS.setdefault(shape, {"count": 0, "seconds": 0.0, "first": t0, "last": t1})
            s["count"] += 1
            s["seconds"] += t1 - t0
            s["first"], s["last"] = min(s["first"], t0), max(s["last"], t1)


def _write(path: str) -> None:
    if not _STATS:
        return  # a database-path run: nothing to count (and OUT.json left as it was)
    out = {
        shape: {
            "count": s["count"],
            "seconds": round(s["seconds"], 3),
            "span": round(s["last"] - s["first"], 3),
            "starts_at": round(s["first"] - _START, 3),
        }
        for shape, s in sorted(_STATS.items(), key=lambda kv: kv[1]["first"])
    }
    with open(path, "w") as f:
        json.dump({"wall": round(time.perf_counter() - _START, 3), "requests": out}, f, indent=1)


def main() -> int:
    out, args = sys.argv[1], sys.argv[2:]
    requests.Session.send = _send  # type: ignore[method-assign]
    atexit.register(_write, out)
    from vifdoctor.cmd.main import main as vifdoctor

    return vifdoctor(args)


if __name__ == "__main__":
    sys.exit(main())
