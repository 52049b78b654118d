"""The corpus loader downloads once into a cache with a checksum; tested against a local HTTP server."""

import hashlib
import http.server
import threading
from functools import partial
from pathlib import Path

import pytest

from rnnkit.data import download

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "tinyshakespeare" / "input.txt"


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_caches_and_checks(server, tmp_path, monkeypatch):
    root, base = server
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    body = b"to be, or not to be\n" * 100
    (root / "corpus.txt").write_bytes(body)
    good = hashlib.sha256(body).hexdigest()
    path = download.fetch(f"{base}/corpus.txt", "corpus.txt", good)
    assert path.read_bytes() == body
    (root / "corpus.txt").unlink()  # a second call needs no network: the cache answers
    assert download.fetch(f"{base}/corpus.txt", "corpus.txt", good) == path
    (root / "other.txt").write_bytes(b"something else")
    with pytest.raises(ValueError, match="expected .*; not cached"):
        download.fetch(f"{base}/other.txt", "other.txt", good)
    assert not (tmp_path / "cache" / "other.txt").exists()
    assert not list((tmp_path / "cache").glob(".*part"))  # no half-written files left behind
    with pytest.raises(ValueError, match="cannot download"):
        download.fetch(f"{base}/missing.txt", "missing.txt", good)


@pytest.mark.skipif(not SHARED.is_file(), reason="../shared/data/tinyshakespeare is not beside this checkout")
def test_tinyshakespeare_from_a_local_copy_and_through_http(server, tmp_path, monkeypatch):
    text = download.tinyshakespeare(SHARED)
    assert len(text) == 1_115_394 and text.startswith("First Citizen:")
    root, base = server
    (root / "input.txt").write_bytes(SHARED.read_bytes())
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    assert download.tinyshakespeare(url=f"{base}/input.txt") == text
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not shakespeare")
    with pytest.raises(ValueError, match="not the tinyshakespeare text"):
        download.tinyshakespeare(wrong)
