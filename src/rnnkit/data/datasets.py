"""Named time series that need no download: CSVs that statsmodels ships (read from its installed files), and
generated chaotic systems."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from .series import mackey_glass, read_csv_column, read_csv_columns

# name -> (statsmodels dataset folder, CSV file, column, description)
_STATSMODELS = {
    "sunspots": ("sunspots", "sunspots.csv", "SUNACTIVITY", "yearly sunspot numbers 1700-2008 (309 points)"),
    "nile": ("nile", "nile.csv", "volume", "yearly Nile flow at Aswan 1871-1970 (100 points)"),
    "macrodata": ("macrodata", "macrodata.csv", "realgdp", "US real GDP, quarterly 1959-2009 (203 points)"),
    "elec_equip": ("elec_equip", "elec_equip.csv", "STS.M.I7.W.TOVT.NS0016.4.000", "EU electrical equipment "
                   "orders, monthly 1996-2012"),
}


_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
# series stored in other shapes: name -> (folder, file, reader, description)
_STATSMODELS_SPECIAL = {
    "co2": ("co2", "co2.csv", lambda path: read_csv_columns(path, ["co2"], fill="interpolate")[:, 0],
            "weekly Mauna Loa CO2 1958-2001 (2284 points; the 59 missing weeks linearly interpolated)"),
    "elnino": ("elnino", "elnino.csv", lambda path: read_csv_columns(path, _MONTHS).ravel(),
               "monthly sea surface temperature of the El Nino region 1950-2010 (732 points)"),
}


def lorenz(length: int, dt: float = 0.01, sigma: float = 10.0, rho: float = 28.0, beta: float = 8 / 3,
           every: int = 5, discard: int = 1000) -> np.ndarray:
    """The x coordinate of the Lorenz system (RK4 at step ``dt``, sampled every ``every`` steps)."""
    def f(s):
        x, y, z = s
        return np.array([sigma * (y - x), x * (rho - z) - y, x * y - beta * z])

    s, out = np.array([1.0, 1.0, 1.0]), []
    for i in range((length + discard) * every):
        k1 = f(s)
        k2 = f(s + dt / 2 * k1)
        k3 = f(s + dt / 2 * k2)
        k4 = f(s + dt * k3)
        s = s + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        if i % every == every - 1:
            out.append(s[0])
    return np.array(out[discard:])


_GENERATED = {
    "mackey-glass": (lambda: mackey_glass(3000), "Mackey-Glass delay equation, tau = 17 (3000 points)"),
    "lorenz": (lambda: lorenz(3000), "Lorenz system, x coordinate (3000 points)"),
}

DATASETS = sorted([*_STATSMODELS, *_STATSMODELS_SPECIAL, *_GENERATED])


def describe_datasets() -> dict[str, str]:
    return {**{k: v[3] for k, v in _STATSMODELS.items()}, **{k: v[3] for k, v in _STATSMODELS_SPECIAL.items()},
            **{k: v[1] for k, v in _GENERATED.items()}}


def load_series(name: str) -> np.ndarray:
    """A named series as a float array."""
    if name in _GENERATED:
        return _GENERATED[name][0]()
    if name not in _STATSMODELS and name not in _STATSMODELS_SPECIAL:
        raise ValueError(f"unknown dataset {name!r}; expected one of {DATASETS} (or give a CSV file)")
    spec = importlib.util.find_spec("statsmodels")
    if spec is None:
        raise ValueError(f"dataset {name!r} is read from the files statsmodels ships: pip install statsmodels")
    root = Path(spec.submodule_search_locations[0]) / "datasets"
    if name in _STATSMODELS_SPECIAL:
        folder, file, reader, _ = _STATSMODELS_SPECIAL[name]
        return reader(root / folder / file)
    folder, file, column, _ = _STATSMODELS[name]
    return read_csv_column(root / folder / file, column)[0]
