"""argparse's Namespace -> the API's options dataclass: the flags' names are its fields."""

from __future__ import annotations

import argparse
import dataclasses
from typing import TypeVar

T = TypeVar("T")


def options_from(cls: type[T], args: argparse.Namespace) -> T:
    """The options of ``cls`` that this command's parser defines, the rest at defaults."""
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    given = {k: v for k, v in vars(args).items() if k in fields}
    return cls(**given)
