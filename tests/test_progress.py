"""The progress line: rewritten in place on a terminal (a real pseudo-terminal here), silent when the stream is
not one (a pipe, a file, CI's log)."""

from __future__ import annotations

import io
import os

from clipper_core.progress import Progress


def test_a_terminal_sees_the_line_rewritten_and_the_last_text_kept() -> None:
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "w", closefd=True) as stream:
            progress = Progress(stream)
            assert progress.enabled
            progress.update("m:1: 0/2 ready")
            progress.update("m:1: 0/2 ready")  # unchanged: not written again
            progress.update("m:1: 1/2 ready")
            progress.done("m:1: 2/2 ready")
        written = _read_all(master).decode()
    finally:
        os.close(master)
    assert written == ("\r\x1b[Km:1: 0/2 ready" "\r\x1b[Km:1: 1/2 ready" "\r\x1b[Km:1: 2/2 ready\r\n")


def _read_all(master: int) -> bytes:
    """Everything written to the (closed) slave side: a single read may return only part of it (failed once
    in CI); reading past the end fails with EIO on Linux."""
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def test_nothing_is_written_off_a_terminal() -> None:
    stream = io.StringIO()
    with Progress(stream) as progress:
        assert not progress.enabled
        progress.update("building")
        progress.done("built")
    assert stream.getvalue() == ""


def test_a_line_left_open_is_cleared_on_exit() -> None:
    stream = io.StringIO()
    with Progress(stream, enabled=True) as progress:
        progress.update("waiting")
    assert stream.getvalue() == "\r\x1b[Kwaiting\r\x1b[K"
