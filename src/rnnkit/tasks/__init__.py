"""Tasks tie a config to data, a model, metrics and the files a run directory needs to be reloaded.

Each task builds its training and validation batches (text or series streams for truncated BPTT, or datasets of
independent examples) and its model, turns a mean loss into the metrics users read, and saves what evaluation
needs besides the weights (vocabulary, label set, scaler). ``TASKS`` maps ``data.task`` names to task classes.
"""

from .base import Task as Task
from .base import check_artifacts
from .base import load_corpus as load_corpus
from .captioning import CaptionTask as CaptionTask
from .forecast import ForecastTask as ForecastTask
from .images import ImageClassifyTask as ImageClassifyTask
from .language import CharLMTask as CharLMTask
from .language import WordLMTask as WordLMTask
from .longterm import AddingTask as AddingTask
from .longterm import CopyMemoryTask as CopyMemoryTask
from .longterm import PixelsTask as PixelsTask
from .memory import CopyTask as CopyTask
from .memory import RecallTask as RecallTask
from .memory import RepeatCopyTask as RepeatCopyTask
from .music import MusicTask as MusicTask
from .seq2seq import Seq2SeqTask as Seq2SeqTask
from .sequences import ClassifyTask as ClassifyTask
from .sequences import TagTask as TagTask
from .trees import TreeClassifyTask as TreeClassifyTask

TASKS = {"char-lm": CharLMTask, "word-lm": WordLMTask, "forecast": ForecastTask, "classify": ClassifyTask,
         "tag": TagTask, "seq2seq": Seq2SeqTask, "caption": CaptionTask, "ntm-copy": CopyTask,
         "ntm-repeat-copy": RepeatCopyTask, "ntm-recall": RecallTask, "tree-classify": TreeClassifyTask,
         "image-classify": ImageClassifyTask, "music": MusicTask, "adding": AddingTask,
         "copy-memory": CopyMemoryTask, "pixels": PixelsTask}


def task_from_run(config, run_dir, with_data: bool = True) -> Task:
    """The task of the run in ``run_dir`` with the vocabulary, labels and scaler it was trained with (each checked
    against the run's ``artifacts.json``); its data read only when ``with_data``."""
    from pathlib import Path

    check_artifacts(Path(run_dir))
    return TASKS[config.data.task].from_run(config, Path(run_dir), with_data=with_data)
