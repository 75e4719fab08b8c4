"""Starts the demo in this process on a free port, with the same launch settings as `python -m ui`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def running_app(models_dir: Path) -> Iterator[str]:
    """Yields the app's URL; closes the server afterwards."""
    from ui.app import build_demo, serve
    from ui.catalog import load_models
    from ui.load import free_port

    demo = build_demo(load_models(models_dir))
    _, url, _ = serve(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield url
    finally:
        demo.close()
