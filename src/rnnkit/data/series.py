"""Time series: a generator for Mackey-Glass, and reading a column of a user CSV with clear errors."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np


def mackey_glass(length: int, tau: int = 17, beta: float = 0.2, gamma: float = 0.1, n: int = 10,
                 dt: float = 0.1, x0: float = 1.2, discard: int = 500) -> np.ndarray:
    """The Mackey-Glass delay equation dx/dt = β x(t-τ) / (1 + x(t-τ)^n) - γ x(t), integrated with 4th-order
    Runge-Kutta (delayed term held over each step) at step ``dt`` and sampled once per time unit; τ = 17 gives
    the usual chaotic benchmark. The first ``discard`` samples (the transient) are dropped."""
    per_unit = round(1 / dt)
    lag = round(tau / dt)
    total = (length + discard) * per_unit
    x = np.full(total + lag, x0)

    def f(x_t, x_lag):
        return beta * x_lag / (1 + x_lag ** n) - gamma * x_t

    for i in range(lag, total + lag - 1):
        x_lag = x[i - lag]
        k1 = f(x[i], x_lag)
        k2 = f(x[i] + dt / 2 * k1, x_lag)
        k3 = f(x[i] + dt / 2 * k2, x_lag)
        k4 = f(x[i] + dt * k3, x_lag)
        x[i + 1] = x[i] + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x[lag + discard * per_unit::per_unit][:length].copy()


def _read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and data rows of a CSV file, with clear errors for a missing, unreadable or empty file."""
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); expected a CSV file") from None
    if len(rows) < 2:
        raise ValueError(f"{path}: expected a header row and at least one data row")
    return [h.strip() for h in rows[0]], rows[1:]


def _cell_value(path: Path, row: int, column: str, cell: str, missing_ok: bool) -> float:
    """The finite number in a CSV cell (NaN when it is empty / nan / na and ``missing_ok``); otherwise a ValueError
    naming the file, row and column."""
    where = f"{path}: row {row}, column {column!r}"
    if cell == "" or cell.lower() in ("nan", "na"):
        if missing_ok:
            return math.nan
        raise ValueError(f"{where}: missing")
    try:
        v = float(cell)
    except ValueError:
        raise ValueError(f"{where}: not a number ({cell!r})") from None
    if not math.isfinite(v):
        raise ValueError(f"{where}: not a finite number ({cell!r}); expected a real value")
    return v


def read_csv_column(path: str | Path, column: str = "") -> tuple[np.ndarray, str]:
    """One numeric column of a CSV with a header row. ``column`` by name; empty: the first column whose values
    are all numbers. Missing or non-numeric cells raise a ValueError naming the row and the column."""
    path = Path(path)
    header, body = _read_table(path)

    def parse(j: int) -> np.ndarray:
        return np.array([_cell_value(path, r, header[j], row[j].strip() if j < len(row) else "", missing_ok=False)
                         for r, row in enumerate(body, start=2)])

    if column:
        if column not in header:
            raise ValueError(f"{path}: no column {column!r}; columns: {header}")
        try:
            return parse(header.index(column)), column
        except ValueError as e:
            raise ValueError(f"{e}; clean the file or choose another column") from None
    problems = []
    for j, name in enumerate(header):
        try:
            return parse(j), name
        except ValueError as e:
            problems.append(str(e).removeprefix(f"{path}: "))
    raise ValueError(f"{path}: no column holds only finite numbers ({'; '.join(problems[:3])}); clean the file "
                     "or choose a column")


def fill_missing(values: np.ndarray, how: str) -> np.ndarray:
    """Fill NaNs along time: ``ffill`` (carry the last value forward; leading NaNs take the first value) or
    ``interpolate`` (linear in the index)."""
    values = np.array(values, float)
    col = values.reshape(len(values), -1)
    for j in range(col.shape[1]):
        v = col[:, j]
        ok = ~np.isnan(v)
        if not ok.any():
            raise ValueError("a column has no values at all; it cannot be filled")
        if how == "interpolate":
            v[~ok] = np.interp(np.flatnonzero(~ok), np.flatnonzero(ok), v[ok])
        elif how == "ffill":
            idx = np.where(ok, np.arange(len(v)), 0)
            np.maximum.accumulate(idx, out=idx)
            first = np.flatnonzero(ok)[0]
            v[:] = np.where(np.arange(len(v)) < first, v[first], v[idx])
        else:
            raise ValueError(f"fill must be 'ffill' or 'interpolate'; got {how!r}")
    return col.reshape(values.shape)


def read_csv_columns(path: str | Path, columns: list[str], fill: str = "") -> np.ndarray:
    """Several numeric columns of a CSV as (N, len(columns)). Missing cells are an error naming row and column,
    unless ``fill`` is ``ffill`` or ``interpolate``; non-numeric cells are always an error."""
    path = Path(path)
    header, body = _read_table(path)
    missing = [c for c in columns if c not in header]
    if missing:
        raise ValueError(f"{path}: no column(s) {missing}; columns: {header}")
    out = np.full((len(body), len(columns)), np.nan)
    for r, row in enumerate(body):
        for j, name in enumerate(columns):
            k = header.index(name)
            cell = row[k].strip() if k < len(row) else ""
            try:
                out[r, j] = _cell_value(path, r + 2, name, cell, missing_ok=bool(fill))
            except ValueError as e:
                hint = "; pass a fill option (ffill or interpolate) or clean the file" if str(e).endswith(
                    "missing") else ""
                raise ValueError(f"{e}{hint}") from None
    return fill_missing(out, fill) if fill else out
