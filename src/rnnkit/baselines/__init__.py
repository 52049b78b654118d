"""Classic forecasting baselines with the same verbs: ``fit(history)``, ``forecast(horizon)``,
``predict_one_step(series)``."""

from .ar import ARModel as ARModel
from .mlp_ar import MLPAR as MLPAR
from .naive import LastValue as LastValue
from .naive import SeasonalNaive as SeasonalNaive
