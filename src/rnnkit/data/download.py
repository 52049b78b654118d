"""Fetching a text corpus once into a cache, checked against its SHA-256, or reading a local copy.

``tinyshakespeare()`` returns the char-rnn Shakespeare text: from ``path`` if given (a local copy, e.g.
``../shared/data/tinyshakespeare/input.txt``), else from the cache, else downloaded from ``url`` into the cache
(``$RNNKIT_CACHE`` or ``~/.cache/rnnkit``). A download is written to a temporary file and renamed only after its
checksum matches, so an interrupted or corrupted download never poisons the cache.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

from .text import read_text

TINYSHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
TINYSHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


def cache_dir() -> Path:
    return Path(os.environ.get("RNNKIT_CACHE", Path.home() / ".cache" / "rnnkit"))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, name: str, expected_sha256: str, timeout: float = 60.0) -> Path:
    """The cached file ``name``, downloading ``url`` first if needed; raises ValueError on a checksum mismatch or
    a network error, leaving the cache as it was."""
    target = cache_dir() / name
    if target.is_file() and sha256(target) == expected_sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
        got = sha256(Path(tmp))
        if got != expected_sha256:
            raise ValueError(f"download of {url} has SHA-256 {got}, expected {expected_sha256}; not cached")
        os.replace(tmp, target)
        return target
    except OSError as e:
        raise ValueError(f"cannot download {url} ({e}); pass a local copy instead") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def tinyshakespeare(path: str | Path | None = None, url: str = TINYSHAKESPEARE_URL) -> str:
    """The tinyshakespeare text (1,115,394 characters)."""
    if path is not None:
        local = Path(path)
        if local.is_file() and sha256(local) != TINYSHAKESPEARE_SHA256:
            raise ValueError(f"{local} is not the tinyshakespeare text (SHA-256 differs)")
        return read_text(local)
    return read_text(fetch(url, "tinyshakespeare.txt", TINYSHAKESPEARE_SHA256))
