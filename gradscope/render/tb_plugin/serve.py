"""Serving TensorBoard in-process on a log directory, for screenshots and browser tests."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from gradscope.errors import GradscopeInputError

#: The dashboard inside TensorBoard's own UI (the plugin's tab).
DASHBOARD_FRAGMENT = "#gradscope"
#: The dashboard alone: TensorBoard's iframe entry page for the plugin's ES module.
PLUGIN_ENTRY = "data/plugin_entry.html?name=gradscope"


@contextlib.contextmanager
def serve_tensorboard(logdir: str | os.PathLike[str], port: int = 0) -> Iterator[str]:
    """Runs TensorBoard (with every installed plugin, gradscope included) on localhost.

    Args:
        logdir: TensorBoard's ``--logdir``.
        port: the port; 0 picks a free one.

    Yields:
        The base URL, ending in ``/`` (e.g. ``http://localhost:6006/``).

    Raises:
        GradscopeInputError: ``logdir`` is not a directory.

    Example:
        >>> with serve_tensorboard("runs") as url:  # doctest: +SKIP
        ...     print(url + DASHBOARD_FRAGMENT)
    """
    root = Path(logdir)
    if not root.is_dir():
        raise GradscopeInputError(
            f"No log directory at '{root}'. Pass a folder that holds gradscope runs."
        )
    from tensorboard import program

    # TensorBoard logs every request at INFO through werkzeug; keep test and script output clean.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    board = program.TensorBoard()
    board.configure(
        argv=[
            "tensorboard",
            "--logdir",
            str(root),
            "--port",
            str(port),
            "--host",
            "localhost",
            # The Rust data server is an optional download; the Python reader is always there.
            "--load_fast",
            "false",
        ]
    )
    # TensorBoard.launch() starts a server it never stops; building the server ourselves (the
    # same private step launch() takes) lets the context manager shut it down and free the port.
    server = board._make_server()
    thread = threading.Thread(target=server.serve_forever, name="TensorBoard", daemon=True)
    thread.start()
    try:
        yield server.get_url()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


__all__ = ["DASHBOARD_FRAGMENT", "PLUGIN_ENTRY", "serve_tensorboard"]
