"""Task models: embeddings + recurrent layers + head, with one contract,
``forward(inputs, targets=None, state=None) -> Output(prediction, loss, state)``."""

from .forecaster import DirectForecaster as DirectForecaster
from .forecaster import Forecaster as Forecaster
from .language_model import LanguageModel as LanguageModel
from .output import Output as Output
