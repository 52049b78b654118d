"""``rnnkit`` command line: thin argparse sub-commands over the library; no model logic here."""

from __future__ import annotations

import argparse
import logging
import sys

from ..training.trainer import TrainingStopped
from . import demo, esn, explain, forecast, lab, memory, music, ngram, reference, seq2seq, train, word2vec


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnkit", description="Recurrent sequence models: cells, layers, tools.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("-q", "--quiet", action="store_true", help="print only results, no progress")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (train, seq2seq, forecast, esn, memory, music, lab, ngram, word2vec, demo, explain, reference):
        module.register(sub)
    sub.add_parser("cells", help="list the registered cells").set_defaults(run=_list_cells)
    return parser


def _list_cells(args: argparse.Namespace) -> int:
    from ..registry import CELLS

    for name, cls in CELLS.items():
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        print(f"{name:15s} {cls.__name__:18s} {summary}")
    return 0


def describe_os_error(e: OSError) -> str:
    """One line for a failed read or write: the file, the cause, and what to do."""
    import errno

    where = f"{e.filename}: " if e.filename else ""
    advice = {errno.ENOSPC: "the disk is full; files are written atomically, so the earlier checkpoints are "
                            "intact: free some space and continue with --resume",
              errno.EACCES: "permission denied; choose a directory you can write to (--run-dir, --out)",
              errno.EROFS: "the file system is read-only; choose another directory (--run-dir, --out)",
              errno.ENOTDIR: "a part of this path is a file, not a directory",
              errno.EISDIR: "this is a directory; expected a file"}.get(e.errno)
    return f"{where}{advice or e.strerror or e}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        dotted = [u.split("=")[0] for u in unknown if u.startswith("--") and "." in u]
        if dotted and args.command in ("train", "evaluate", "predict"):
            from ..config import build_config, option_table

            key = dotted[0][2:]
            keys = [row[0] for row in option_table()]
            if key in keys:  # a real option that this command does not take
                accepted = sorted(k for k in vars(args) if "." in k)
                print(f"rnnkit: error: {args.command} does not take --{key} (it is fixed when training); it takes "
                      f"{', '.join('--' + k for k in accepted)}", file=sys.stderr)
                return 2
            try:  # the config layer names the unknown key and lists the valid ones
                build_config(None, {key: ""})
            except ValueError as e:
                print(f"rnnkit: error: {e}", file=sys.stderr)
                return 2
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    if args.command in ("train", "evaluate", "forecast", "word2vec"):
        from ..runtime import tune_malloc

        tune_malloc()
    try:
        return args.run(args)
    except ValueError as e:  # bad user input: one clear line, no trace
        print(f"rnnkit: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # unwritable directory, disk full, a path under a file: name the file and the cause
        print(f"rnnkit: error: {describe_os_error(e)}", file=sys.stderr)
        return 1
    except TrainingStopped as e:
        print(f"rnnkit: training stopped: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("rnnkit: interrupted; `rnnkit train --resume RUN` continues from the last checkpoint", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
