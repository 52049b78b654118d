"""Generated sequence-to-sequence tasks with a fixed seed: the classic checks that an encoder-decoder works.

* ``reverse``: 3-12 digits → the same digits reversed (Sutskever et al. 2014 reversed the source for this reason).
* ``sort``: 3-12 digits → the digits in increasing order.
* ``addition``: ``"123+45"`` → ``"168"``, each operand of 1-3 random digits (the Keras ``addition_rnn`` example).
* ``dates``: a date 1950-2049 in one of many surface forms (``"Tuesday, March 3, 2021"``, ``"3 mar 2021"``,
  ``"03/03/2021"`` (month first), ``"3.3.2021"`` (day first), ...) → its ISO form ``"2021-03-03"``.

``synthetic_pairs(name, n, seed)`` draws ``n`` pairs with distinct sources; ``exclude`` holds sources that must not
appear (a test set disjoint from training). Digits tasks are whitespace-separated tokens; addition and dates are
read character by character (``SYNTHETIC[name].tokenizer``).
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _digits(rng: random.Random) -> list[str]:
    return [str(rng.randrange(10)) for _ in range(rng.randint(3, 12))]


def _reverse(rng: random.Random) -> tuple[str, str]:
    d = _digits(rng)
    return " ".join(d), " ".join(reversed(d))


def _sort(rng: random.Random) -> tuple[str, str]:
    d = _digits(rng)
    return " ".join(d), " ".join(sorted(d))


def _addition(rng: random.Random) -> tuple[str, str]:
    a, b = (int("".join(str(rng.randrange(10)) for _ in range(rng.randint(1, 3)))) for _ in range(2))
    return f"{a}+{b}", str(a + b)


def _date_forms(d: datetime.date) -> list[str]:
    month, day_name = _MONTHS[d.month - 1], _DAYS[d.weekday()]
    return [f"{month} {d.day}, {d.year}", f"{d.day} {month} {d.year}", f"{month[:3]} {d.day} {d.year}",
            f"{d.day} {month[:3]} {d.year}", f"{day_name}, {month} {d.day}, {d.year}",
            f"{day_name[:3]} {d.day} {month[:3]} {d.year}", f"{d.month:02d}/{d.day:02d}/{d.year}",
            f"{d.month}/{d.day}/{d.year}", f"{d.day}.{d.month}.{d.year}", f"{d.day:02d}.{d.month:02d}.{d.year}",
            f"{d.year}.{d.month:02d}.{d.day:02d}", f"{month} {d.year}, day {d.day}", f"{d.day} of {month} {d.year}"]


def _dates(rng: random.Random) -> tuple[str, str]:
    start = datetime.date(1950, 1, 1)
    d = start + datetime.timedelta(days=rng.randrange((datetime.date(2050, 1, 1) - start).days))
    form = rng.choice(_date_forms(d))
    case = rng.random()
    form = form.lower() if case < 0.3 else form.upper() if case < 0.4 else form
    return form, d.isoformat()


@dataclass(frozen=True)
class SyntheticTask:
    name: str
    make: Callable[[random.Random], tuple[str, str]]
    tokenizer: str  # "whitespace" or "chars"
    default_size: int
    example: str


SYNTHETIC = {t.name: t for t in (
    SyntheticTask("reverse", _reverse, "whitespace", 20_000, "3 1 4 1 5 → 5 1 4 1 3"),
    SyntheticTask("sort", _sort, "whitespace", 20_000, "3 1 4 1 5 → 1 1 3 4 5"),
    SyntheticTask("addition", _addition, "chars", 50_000, "123+45 → 168"),
    SyntheticTask("dates", _dates, "chars", 20_000, "Tuesday, March 3, 2021 → 2021-03-03"),
)}


def synthetic_pairs(name: str, n: int = 0, seed: int = 0, exclude: Iterable[str] = ()) -> list[tuple[str, str]]:
    """``n`` (default: the task's ``default_size``) (source, target) pairs with distinct sources, none in
    ``exclude``, drawn from ``random.Random(seed)``."""
    if name not in SYNTHETIC:
        raise ValueError(f"unknown synthetic task {name!r}; expected one of {sorted(SYNTHETIC)}")
    task = SYNTHETIC[name]
    n = n or task.default_size
    if n < 1:
        raise ValueError(f"the number of examples must be >= 1; got {n}")
    rng, seen, pairs = random.Random(f"{name}-{seed}"), set(exclude), []
    attempts = 0
    while len(pairs) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ValueError(f"{name}: could not draw {n} distinct sources (only {len(pairs)} found); ask for fewer")
        source, target = task.make(rng)
        if source not in seen:
            seen.add(source)
            pairs.append((source, target))
    return pairs
