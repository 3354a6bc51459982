"""What a front end lends the writing commands: progress, and when to stop."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol


class Progress(Protocol):
    """A progress display (tqdm's interface): told of rows done, then closed."""

    def update(self, n: int) -> Any: ...

    def close(self) -> Any: ...


@contextmanager
def _never_stop() -> Iterator[Callable[[], bool]]:
    yield lambda: False


@dataclass
class Hooks:
    """What a front end lends the writing commands.

    ``progress(total)`` makes a progress display (None: no display).
    ``writing()`` is entered around the writes only; it yields the callable
    asked before each batch whether to stop (the CLI turns Ctrl-C into it).
    """

    progress: Callable[[int], Progress | None] = lambda total: None
    writing: Callable[[], AbstractContextManager[Callable[[], bool]]] = _never_stop
