"""Reservoir computing (seed 003, "Echo state networks"): fixed random leaky reservoirs, ridge / RLS readouts,
echo state networks for forecasting and classification, and a hyperparameter search."""

from .esn import ESN as ESN
from .esn import ESNClassifier as ESNClassifier
from .esn import nrmse as nrmse
from .readout import RidgeReadout as RidgeReadout
from .readout import RLSReadout as RLSReadout
from .reservoir import CellReservoir as CellReservoir
from .reservoir import DeepReservoir as DeepReservoir
from .reservoir import Reservoir as Reservoir
from .search import random_search as random_search
