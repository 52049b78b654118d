"""Training: the engine, checkpoints."""

from .trainer import Trainer as Trainer
from .trainer import TrainingStopped as TrainingStopped
from .trainer import evaluate as evaluate
from .trainer import lr_factor as lr_factor
