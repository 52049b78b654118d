"""Reading user text files with clear errors instead of crashes deep inside a model."""

from __future__ import annotations

from pathlib import Path


def default_text() -> str:
    """Python's own documentation text (``pydoc_data.topics``), shipped with every CPython: ~465,000 characters
    of English prose and code, the corpus rnnkit uses when no file is given."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


def read_text(path: str | Path, max_chars: int | None = None) -> str:
    """Read a UTF-8 text file. Missing, empty, binary or non-UTF-8 files raise a ValueError saying which."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"{path}: no such file")
    raw = file.read_bytes()
    if not raw.strip():
        raise ValueError(f"{path}: the file is empty; expected UTF-8 text")
    if b"\x00" in raw[:8192]:
        raise ValueError(f"{path}: looks binary (contains NUL bytes); expected a UTF-8 text file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 ({e.reason} at byte {e.start}); expected a UTF-8 text file") from None
    return text if max_chars is None else text[:max_chars]
