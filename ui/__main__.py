"""`python -m ui [--host 127.0.0.1] [--port 7860] [--models-dir DIR] [--share]`."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def default_models_dir() -> str:
    """./saved_models when there is one, else the models shipped beside this package (a checkout's)."""
    here = "saved_models"
    shipped = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "saved_models")
    return here if os.path.isdir(here) or not os.path.isdir(shipped) else shipped


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ui", description="The seq2seq_app Gradio demo.")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument(
        "--models-dir",
        default=None,
        help="folder holding the SavedModel folders (default: ./saved_models, else the shipped ones)",
    )
    parser.add_argument("--share", action="store_true", help="ask Gradio for a public share link")
    args = parser.parse_args(argv)
    models_dir = args.models_dir or default_models_dir()
    if not os.path.isdir(models_dir):
        print(f"note: no folder {models_dir!r}; every tab will say how to train its model")

    from ui.app import build_demo, serve
    from ui.catalog import load_models

    print(f"models from {os.path.abspath(models_dir)}")
    serve(build_demo(load_models(models_dir)), args.host, args.port, args.share)


if __name__ == "__main__":
    main()
