"""Latent-variable sequence models: the deep Markov model (deep Kalman filter) of seed 000, its inference networks
and the Gaussian closed forms they need."""

from .dmm import EMISSIONS as EMISSIONS
from .dmm import INFERENCES as INFERENCES
from .dmm import TRANSITIONS as TRANSITIONS
from .dmm import AffineIAF as AffineIAF
from .dmm import DeepMarkovModel as DeepMarkovModel
from .dmm import InferenceNetwork as InferenceNetwork
from .gaussian import kl_normal as kl_normal
from .gaussian import log_normal as log_normal
