"""Typed run configuration: one source of truth for defaults, TOML files, ``--section.key`` overrides,
``--help`` and the ``config.json`` saved in every run directory.

A run is ``RunConfig(model=ModelConfig, data=DataConfig, train=TrainConfig)``. Every field has a type, a
default and a one-line comment (the ``help``). Unknown keys and bad values are rejected with the list of
valid ones.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal


def _f(default, help: str, **kw):
    if isinstance(default, dict):  # a table option (fresh per config)
        return field(default_factory=lambda: dict(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class ModelConfig:
    cell: str = _f("lstm", "recurrent cell, any name from `rnnkit cells`")
    cell_options: dict = _f({}, "the cell's own arguments as TOML key = value pairs, e.g. 'tau = [1, 8], learn_tau "
                            "= true' (leaky), 'delays = [1, 4]', 'forget_bias = 1.0', 'proj_size = 64', "
                            "'output_size = 32' (jordan; default hidden_size), 'nonlinearity = \"relu\"'")
    composition: Literal["tree-rnn", "rntn", "child-sum-lstm", "nary-lstm"] = _f(
        "nary-lstm", "tree-classify: how a node's state is composed from its children's: the recursive network, the "
        "recursive neural tensor network (binary trees), the Child-Sum Tree-LSTM (any number of children) or the "
        "binary N-ary Tree-LSTM")
    image_model: Literal["renet", "rows", "cnn"] = _f(
        "renet", "image-classify: a 2-D RNN (ReNet layers: four bidirectional sweeps; model.num_layers of them), an "
        "RNN reading the pixel rows top to bottom, or a small CNN (model.cnn_channels)")
    music_model: Literal["rnn", "dmm"] = _f(
        "rnn", "music: an RNN with independent Bernoulli outputs per key (model.cell), or the deep Markov model (deep "
        "Kalman filter) whose inference network is the RNN of model.cell / hidden_size / num_layers")
    latent_size: int = _f(100, "music dmm: size of the latent state z_t", min=1)
    transition: Literal["gated", "mlp", "linear"] = _f(
        "gated", "music dmm: p(z_t | z_{t-1}) by Krishnan et al.'s gated transition, a two-layer ReLU network, or "
        "linear (the Kalman filter's state equation)")
    transition_size: int = _f(200, "music dmm: hidden units of the transition network", min=1)
    emission_size: int = _f(100, "music dmm: hidden units of the emission network", min=1)
    inference: Literal["st-r", "st-l", "st-lr", "mean-field"] = _f(
        "st-r", "music dmm: q(z_t | z_{t-1}, ...) reading x from the right (x_t..x_T), the left, both, or the "
        "mean-field q(z_t | x) of a bidirectional RNN (Krishnan et al. 2017)")
    flows: int = _f(0, "music dmm: inverse autoregressive flow steps after the combiner (Kingma et al. 2016)", min=0)
    patch: int = _f(2, "image-classify with renet: the first layer reads patches of patch × patch pixels", min=1)
    bidirectional: Literal["auto", "true", "false"] = _f(
        "auto", "add a backward-in-time layer per level (classify, tag and seq2seq encoders; auto: true for tag and "
        "seq2seq, false otherwise)")
    attention: Literal["none", "additive", "dot", "general"] = _f(
        "additive", "seq2seq / caption: the decoder attends over the encoder outputs (caption: the image's grid cells) "
        "with Bahdanau's additive score or Luong's dot / general score, or not at all (none: the context is the "
        "encoder's summary only)")
    context: Literal["init", "input", "both"] = _f(
        "init", "seq2seq / caption: the encoder summary C enters the decoder as its initial state, as an extra "
        "input at every step, or both")
    cnn_channels: str = _f("32,64,128", "caption on images, image-classify with cnn: output channels of each block "
                           "of the image encoder (3×3 convolution, ReLU, 2×2 max-pooling), comma-separated")
    input_feeding: bool = _f(True, "seq2seq / caption with attention: feed the previous attentional vector into the "
                             "next step (Luong et al. 2015)")
    input_noise: float = _f(0.0, "classify / tag on numeric sequences: add Gaussian noise of this standard deviation "
                            "to the (standardised) inputs while training", min=0.0)
    pooling: Literal["last", "mean", "max", "attention"] = _f(
        "last", "classify: summarise the outputs over time by the last state (both directions for a BiRNN), the "
        "mean or max over the real steps, or additive attention")
    hidden_size: int = _f(256, "units per recurrent layer", min=1)
    num_layers: int = _f(2, "stacked recurrent layers", min=1)
    dropout: float = _f(0.1, "dropout between layers and before the output layer", min=0.0, max=0.99)
    variational_dropout: bool = _f(False, "that dropout with one mask per sequence, the same at every step (Gal & "
                                   "Ghahramani 2016; AWD-LSTM's locked dropout)")
    weight_dropout: float = _f(0.0, "DropConnect on the recurrent matrices W_hh, one mask per batch (AWD-LSTM's "
                               "weight drop)", min=0.0, max=0.99)
    zoneout: str = _f("0", "zoneout (Krueger et al. 2017): each state unit keeps its previous value with this "
                      "probability at every training step; one rate, or one per state tensor, comma-separated (an "
                      "LSTM's h,c: '0.05,0.5'). Runs rnnkit's Python loop")
    embedding_dropout: float = _f(0.0, "language models: drop whole token types from the embedding table (AWD-LSTM's "
                                  "dropoute)", min=0.0, max=0.99)
    embedding_size: int = _f(64, "token embedding size (language models)", min=1)
    tie_weights: bool = _f(False, "share the embedding and output matrices (needs embedding_size == hidden_size)")
    embeddings: str = _f("", "language models: initialise the embedding from `rnnkit word2vec` output (a directory)")
    init_range: float = _f(0.0, "language models: initialise every parameter uniformly in [-r, r] (Zaremba et al.: "
                           "0.1; 0: each layer's own initialisation); layer-normalisation gains stay 1", min=0.0)


@dataclass(frozen=True)
class DataConfig:
    task: Literal["char-lm", "word-lm", "forecast", "classify", "tag", "seq2seq", "caption", "ntm-copy",
                  "ntm-repeat-copy", "ntm-recall", "tree-classify", "image-classify", "music", "adding",
                  "copy-memory", "pixels"] = _f(
        "char-lm", "what to learn: next character, next word, next value of a series, a label per sequence "
        "(classify), a label per step (tag), an output sequence per input sequence (seq2seq), a caption per "
        "image (caption), a generated memory task: copy, repeat copy or associative recall of random bit "
        "vectors (ntm-*), a label per node of a tree (tree-classify: bracketed or JSON trees), or a class per image "
        "(image-classify), or the next step of a piano roll (music: 88 binary keys; RNN or deep Markov model), or a "
        "long-term dependency benchmark: the adding problem, copy memory, pixel-by-pixel digits")
    format: Literal["auto", "ts", "csv", "jsonl", "text", "sst", "conll", "segment"] = _f(
        "auto", "classify / tag files: UEA .ts, CSV (id,label,features rows), JSONL, label<TAB>sentence text, SST "
        "bracketed trees, CoNLL token/tag columns, or segment (text with boundary markers); auto: by the file's "
        "extension and first line")
    boundary: str = _f("_", "segment format: the boundary marker to remove and predict (PTB characters: _)")
    sst_labels: Literal["fine", "binary"] = _f("fine", "sst format: five classes, or negative/positive with neutral "
                                               "sentences dropped")
    phrases: bool = _f(False, "sst format: also train on every labelled phrase of the training trees")
    standardize: bool = _f(True, "classify on numeric sequences: scale each feature by the training set's mean "
                           "and standard deviation (saved in the run)")
    path: str = _f("", "a UTF-8 text file (char-lm, word-lm; or 'tinyshakespeare', downloaded once and checked), "
                       "a CSV file (forecast), a file of examples (classify, tag) or of source<TAB>target / SCAN lines "
                       "(seq2seq; or a generated task: reverse, sort, addition, dates), a captions file or .npz "
                       "(caption; or digit-strips); empty: the built-in default")
    split: Literal["test", "valid", "train"] = _f(
        "test", "music: the part of a .mat / .json file that `rnnkit evaluate RUN --data.path FILE` scores")
    val_path: str = _f("", "a separate validation file; empty: the last val_fraction of path (examples: a "
                           "random val_fraction, drawn with train.seed)")
    lower: bool = _f(False, "word-lm: lower-case the text")
    tokenizer: Literal["words", "whitespace", "chars"] = _f(
        "words", "word-lm, classify, tag, seq2seq: split punctuation off words, split on whitespace only "
        "(pre-tokenized text, e.g. PTB, SCAN), or (seq2seq) read characters")
    num_examples: int = _f(0, "seq2seq / caption on a generated task (data.path reverse, sort, addition, dates or "
                           "digit-strips): examples to draw with train.seed (0: the task's default); ntm-* tasks: "
                           "validation examples (0: 256; training draws fresh ones every update); adding, "
                           "copy-memory: validation examples (0: 1,000)", min=0)
    min_length: int = _f(0, "ntm-* tasks: shortest sequence (copy, repeat copy) or fewest items (recall); 0: the "
                         "task's usual range, copy 1-20, repeat copy 1-10, recall 2-6", min=0)
    max_length: int = _f(0, "ntm-* tasks: longest sequence or most items (0: the usual range)", min=0)
    lag: int = _f(100, "adding: the sequence length T; copy-memory: the blank stretch T between the symbols and the "
                  "delimiter", min=1)
    adding_form: Literal["modern", "original"] = _f(
        "modern", "adding: values U[0,1] with one marker in each half (Le et al. 2015; Arjovsky et al. 2016), or "
        "Hochreiter & Schmidhuber's 1997 form (values U[-1,1], target 0.5 + (X1 + X2)/4)")
    permuted: bool = _f(False, "pixels: read the 64 pixels in one fixed random order instead of row by row")
    min_repeats: int = _f(1, "ntm-repeat-copy: fewest repeats", min=1)
    max_repeats: int = _f(10, "ntm-repeat-copy: most repeats", min=1)
    bits: int = _f(0, "ntm-* tasks: width of the random bit vectors (0: 8, recall 6)", min=0)
    min_count: int = _f(1, "word-lm: keep words seen at least this often in training; the rest become <unk>",
                        min=1)
    max_vocab: int = _f(0, "word-lm: at most this many vocabulary entries (0: no limit)", min=0)
    column: str = _f("", "CSV column to forecast (forecast task; empty: the first numeric column)")
    dataset: str = _f("mackey-glass", "forecast task without a path: a named series (`rnnkit forecast --list`)")
    seq_length: int = _f(100, "k1: steps per truncated-BPTT chunk (one parameter update per chunk)", min=2)
    batch_size: int = _f(32, "parallel streams (rows) or examples per batch", min=1)
    val_fraction: float = _f(0.1, "the last part of the data held out for validation", min=0.01, max=0.5)
    max_chars: int = _f(0, "use at most this many characters of the text (0: all)", min=0)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = _f(1200, "parameter updates to run", min=1)
    epochs: int = _f(0, "train for this many passes over the training data instead (sets train.steps; 0: off)",
                     min=0)
    lr: float = _f(2e-3, "learning rate", min=0.0, max=1000.0)
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop", "asgd", "adagrad"] = _f(
        "adam", "torch optimizer (adagrad: the recursive networks' usual choice, Socher et al. 2013, Tai et al. 2015)")
    momentum: float = _f(0.0, "momentum (sgd, rmsprop)", min=0.0, max=1.0)
    weight_decay: float = _f(0.0, "weight decay", min=0.0)
    schedule: Literal["none", "step", "cosine", "plateau"] = _f(
        "none", "learning-rate schedule: step decay (Zaremba et al.), cosine to 0 (over train.steps, or over "
        "train.time_limit when that comes first), or reduce on plateau")
    decay_every: int = _f(1000, "step schedule: multiply lr by decay_factor every this many updates", min=1)
    decay_start: int = _f(0, "step schedule: updates before the first decay (0: decay_every)", min=0)
    warmup: int = _f(0, "raise lr linearly from 0 over this many updates (any schedule but plateau)", min=0)
    decay_factor: float = _f(0.5, "step / plateau schedules: lr multiplier", min=0.0, max=1.0)
    bptt: int = _f(0, "k2: back-propagate through at most this many steps inside a chunk (0: the whole chunk)",
                   min=0)
    clip_norm: float = _f(5.0, "clip the global gradient norm to this (0: off)", min=0.0)
    gradient_regularizer: float = _f(0.0, "weight λ of Pascanu et al.'s 2013 regulariser Ω = Σ_k (‖∂L/∂h_(k+1) · "
                                     "∂h_(k+1)/∂h_k‖ / ‖∂L/∂h_(k+1)‖ − 1)², which keeps the error signal from "
                                     "vanishing across steps (0: off; the layers then run their loop, not a fused "
                                     "kernel)", min=0.0)
    ema: float = _f(0.0, "average the weights as training goes, w̄ ← d·w̄ + (1 − d)·w after every update with d this "
                    "decay (Polyak averaging, as an exponential moving average): evaluation, the best weights and "
                    "model.safetensors use the average (0: off; 0.999 averages over about the last 1,000 updates)",
                    min=0.0, max=0.999999)
    clip_value: float = _f(0.0, "clip every gradient entry to [-v, v] (0: off)", min=0.0)
    teacher_forcing: float = _f(1.0, "probability of feeding the true previous value (forecast) or token (seq2seq); "
                                "1: teacher forcing, 0: free running",
                                min=0.0, max=1.0)
    teacher_forcing_final: float = _f(1.0, "scheduled sampling: anneal teacher_forcing linearly to this", min=0.0,
                                      max=1.0)
    eval_every: int = _f(200, "evaluate on the validation split every this many updates (0: once per epoch)", min=0)
    eval_batches: int = _f(0, "validation chunks per evaluation (0: the whole split)", min=0)
    patience: int = _f(0, "early stopping: stop after this many evaluations without improvement (0: off)", min=0)
    monitor: str = _f("loss", "the validation metric that picks the best weights (and drives early stopping and the "
                      "plateau schedule): loss, or any metric the task reports (accuracy, macro_f1, perplexity, ...); "
                      "accuracy, F1, BLEU and exact-match metrics count higher as better, the rest lower")
    time_limit: float = _f(0.0, "stop after this many minutes of wall-clock time, evaluating first (0: off; "
                                "counted from the start or the resume)", min=0.0)
    kl_anneal: int = _f(0, "music dmm: raise the KL term's weight linearly from kl_start to 1 over this many updates "
                        "(0: weight 1 throughout)", min=0)
    kl_start: float = _f(0.2, "music dmm: the KL weight at the first update when kl_anneal is on", min=0.0, max=1.0)
    eval_samples: int = _f(0, "music dmm: also report iw_nll, the importance-sampled NLL per step with this many "
                           "posterior samples per sequence, at every evaluation (0: the ELBO only)", min=0)
    checkpoint_every: int = _f(200, "write a checkpoint every this many updates", min=1)
    log_every: int = _f(20, "append training metrics to metrics.jsonl every this many updates", min=1)
    nonfinite: Literal["skip", "stop"] = _f("skip", "on a NaN/Inf loss or gradient: skip the update, or stop")
    max_skips: int = _f(10, "stop after this many consecutive skipped updates", min=1)
    seed: int = _f(0, "seed for data order, initialisation and dropout")
    device: Literal["auto", "cpu", "cuda"] = _f("auto", "where to train (auto: cuda when available)")
    precision: Literal["fp32", "bf16", "fp16", "auto"] = _f(
        "fp32", "autocast for the forward pass (fp32 weights, optimizer state and losses; fp16 with a gradient "
        "scaler; auto: bf16 where the CPU has AMX / AVX-512 BF16 and a probe shows a speed-up, or on a GPU)")
    tensorboard: bool = _f(False, "also log to TensorBoard (needs the tensorboard package)")


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


_SECTION_CLASSES = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}


def _field_type(cls, f):
    return typing.get_type_hints(cls, include_extras=True)[f.name]


def parse_value(cls, name: str, raw):
    """Convert ``raw`` (a string from the command line, or a TOML/JSON value) to the field's type, checking
    choices and bounds. Raises ValueError naming the key and what is allowed."""
    by_name = {f.name: f for f in fields(cls)}
    section = next(k for k, v in _SECTION_CLASSES.items() if v is cls)
    if name not in by_name:
        raise ValueError(f"unknown key '{section}.{name}'; valid keys: {', '.join(sorted(by_name))}")
    f = by_name[name]
    typ = _field_type(cls, f)
    key = f"{section}.{name}"
    if typing.get_origin(typ) is Literal:
        choices = typing.get_args(typ)
        if isinstance(raw, bool) and "true" in choices:  # a TOML / JSON boolean for a true/false/auto option
            raw = str(raw).lower()
        if raw not in choices:
            raise ValueError(f"{key} must be one of {list(choices)}; got {raw!r}")
        value = raw
    elif typ is bool:
        if isinstance(raw, bool):
            value = raw
        elif isinstance(raw, str) and raw.lower() in ("true", "1", "yes", "false", "0", "no"):
            value = raw.lower() in ("true", "1", "yes")
        else:
            raise ValueError(f"{key} must be true or false; got {raw!r}")
    elif typ is dict:
        value = _parse_table(key, raw)
    elif typ in (int, float):
        try:
            if typ is int and isinstance(raw, float) and not raw.is_integer():
                raise ValueError
            value = typ(raw) if not (typ is int and isinstance(raw, str)) else int(raw, 10)
        except (TypeError, ValueError):
            raise ValueError(f"{key} must be {'an integer' if typ is int else 'a number'}; got {raw!r}") from None
        if isinstance(raw, bool):
            raise ValueError(f"{key} must be {'an integer' if typ is int else 'a number'}; got {raw!r}")
        if not math.isfinite(value):  # NaN passes every bound (no comparison with it is true); inf means nothing
            raise ValueError(f"{key} must be a finite number; got {raw!r}")
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
            raise ValueError(f"{key} must be {bounds}; got {value}")
    else:
        if not isinstance(raw, str):
            raise ValueError(f"{key} must be a string; got {raw!r}")
        value = raw
    if name == "dataset" and cls is DataConfig:
        from .data.datasets import DATASETS

        if value not in DATASETS:
            raise ValueError(f"data.dataset must be one of {DATASETS}; got {value!r}")
    if name == "cell" and cls is ModelConfig:
        from .registry import CELLS

        if value not in CELLS:
            raise ValueError(f"model.cell must be one of {sorted(CELLS)}; got {value!r}")
    return value


def _parse_table(key: str, raw) -> dict:
    """A dict from a TOML/JSON table, or from a command-line string of TOML ``key = value`` pairs; every number in
    it finite."""
    table = _read_table(key, raw)
    for name, value in table.items():
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"{key}: {name} must be finite; got {value!r}")
    return table


def _read_table(key: str, raw) -> dict:
    if isinstance(raw, dict):
        return dict(raw)
    if not isinstance(raw, str):
        raise ValueError(f"{key} must be a table of key = value pairs; got {raw!r}")
    if not raw.strip():
        return {}
    try:
        return tomllib.loads(f"t = {{{raw}}}")["t"]
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{key} must be TOML key = value pairs separated by commas, e.g. 'tau = [1, 8], "
                         f"learn_tau = true'; got {raw!r} ({e})") from None


def cell_kwargs(model: ModelConfig) -> dict:
    """The cell's constructor arguments from ``model.cell_options``: TOML arrays become tuples (so ``tau = [1,
    8]`` is the leaky cell's (tau_min, tau_max) range), and a Jordan cell's output size defaults to hidden_size."""
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in model.cell_options.items()}
    if model.cell == "jordan":
        kwargs.setdefault("output_size", model.hidden_size)
    return kwargs


#: the tasks whose models are one sequence layer (``rnnkit.RNN``) taking the layer's regularisation options
LAYER_REGULARISED_TASKS = ("char-lm", "word-lm", "forecast", "classify", "tag", "ntm-copy", "ntm-repeat-copy",
                           "ntm-recall", "music", "adding", "copy-memory", "pixels")


def recurrent_kwargs(model: ModelConfig) -> dict:
    """``cell_kwargs`` plus the sequence layer's regularisation options that are set (weight dropout, variational
    dropout): what a model passes on to its ``rnnkit.RNN``."""
    kwargs = cell_kwargs(model)
    if model.weight_dropout:
        kwargs["weight_dropout"] = model.weight_dropout
    if model.variational_dropout:
        kwargs["variational_dropout"] = True
    rates = zoneout_rates(model)
    if any(rates):
        kwargs["zoneout"] = rates[0] if len(rates) == 1 else rates
    return kwargs


def zoneout_rates(model: ModelConfig) -> tuple[float, ...]:
    """``model.zoneout`` ("0.1" or "0.05,0.5") as numbers; a clear error for anything else."""
    try:
        return tuple(float(p) for p in model.zoneout.split(","))
    except ValueError:
        raise ValueError(f"model.zoneout must be a rate or comma-separated rates (one per state tensor), e.g. "
                         f"'0.1' or '0.05,0.5'; got {model.zoneout!r}") from None


def check_regularisation(config: RunConfig) -> None:
    """The layer's regularisation options only where the task's model is built on ``rnnkit.RNN``."""
    m, task = config.model, config.data.task
    if (m.weight_dropout or m.variational_dropout or any(zoneout_rates(m))) and task not in LAYER_REGULARISED_TASKS:
        raise ValueError(f"model.weight_dropout, model.variational_dropout and model.zoneout apply to the tasks "
                         f"{', '.join(LAYER_REGULARISED_TASKS)}; not to {task!r}")
    if m.embedding_dropout and task not in ("char-lm", "word-lm"):
        raise ValueError(f"model.embedding_dropout applies to language models (char-lm, word-lm); not to {task!r}")


def check_cell_options(model: ModelConfig) -> None:
    """Reject option names the cell does not take (listing the valid ones) and values it refuses, by key."""
    import inspect

    from .registry import build_cell, cell_class

    cls = cell_class(model.cell)
    valid = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "input_size", "hidden_size")]
    unknown = sorted(set(model.cell_options) - set(valid))
    if unknown:
        raise ValueError(f"model.cell_options: {model.cell!r} takes no option {unknown[0]!r}; valid options: "
                         f"{', '.join(valid) or 'none'}")
    try:  # one cell of the configured size: the cell's own checks name what is wrong
        cell = build_cell(model.cell, 1, model.hidden_size, **cell_kwargs(model))
    except (ValueError, TypeError, RuntimeError) as e:
        raise ValueError(f"model.cell_options for {model.cell!r}: {e}") from None
    from .layers.regularization import zoneout_rates as rates_per_tensor

    rates = zoneout_rates(model)
    rates_per_tensor(cell, rates[0] if len(rates) == 1 else rates, f"model.zoneout for {model.cell!r}")


def build_config(base: dict | None = None, overrides: dict[str, str] | None = None) -> RunConfig:
    """A RunConfig from a nested dict (TOML / config.json) and dotted overrides ``{"train.lr": "3e-3"}``."""
    values: dict[str, dict] = {s: {} for s in _SECTION_CLASSES}
    for section, entries in (base or {}).items():
        if section not in _SECTION_CLASSES:
            raise ValueError(f"unknown section '{section}'; valid sections: {', '.join(_SECTION_CLASSES)}")
        if not isinstance(entries, dict):
            raise ValueError(f"section '{section}' must be a table of keys")
        for name, raw in entries.items():
            values[section][name] = parse_value(_SECTION_CLASSES[section], name, raw)
    for dotted, raw in (overrides or {}).items():
        section, _, name = dotted.partition(".")
        if section not in _SECTION_CLASSES or not name:
            raise ValueError(f"unknown option '--{dotted}'; options look like --train.lr, --model.cell, "
                             f"--data.path (sections: {', '.join(_SECTION_CLASSES)})")
        values[section][name] = parse_value(_SECTION_CLASSES[section], name, raw)
    config = RunConfig(**{s: cls(**values[s]) for s, cls in _SECTION_CLASSES.items()})
    check_cell_options(config.model)
    check_regularisation(config)
    if config.model.tie_weights and config.model.embedding_size != config.model.hidden_size:
        raise ValueError("model.tie_weights needs model.embedding_size == model.hidden_size; got "
                         f"{config.model.embedding_size} and {config.model.hidden_size}")
    return config


def load_toml(path: str | Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ValueError(f"config file {path}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"config file {path}: is a directory; expected a TOML file") from None
    except OSError as e:
        raise ValueError(f"config file {path}: cannot be read ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise ValueError(f"config file {path}: not UTF-8 text; expected a TOML file") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"config file {path}: not valid TOML ({e})") from None


def option_table() -> list[tuple[str, str, object, str]]:
    """(dotted key, type name, default, help) for every option: used to build --help."""
    rows = []
    for section, cls in _SECTION_CLASSES.items():
        for f in fields(cls):
            typ = _field_type(cls, f)
            tname = ("{" + ",".join(typing.get_args(typ)) + "}") if typing.get_origin(typ) is Literal else (
                "table" if typ is dict else typ.__name__)
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            rows.append((f"{section}.{f.name}", tname, default, f.metadata["help"]))
    return rows
