"""Tasks tie a config to data, a model, metrics and the files a run directory needs to be reloaded.

Each task builds its training and validation batches (text or series streams for truncated BPTT, or datasets of
independent examples) and its model, turns a mean loss into the metrics users read, and saves what evaluation
needs besides the weights (vocabulary, label set, scaler). ``TASKS`` maps ``data.task`` names to task classes.
"""

from .base import Task as Task
from .base import load_corpus as load_corpus
from .forecast import ForecastTask as ForecastTask
from .language import CharLMTask as CharLMTask
from .language import WordLMTask as WordLMTask
from .sequences import ClassifyTask as ClassifyTask
from .sequences import TagTask as TagTask

TASKS = {"char-lm": CharLMTask, "word-lm": WordLMTask, "forecast": ForecastTask, "classify": ClassifyTask,
         "tag": TagTask}
