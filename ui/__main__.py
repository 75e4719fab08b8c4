"""`python -m ui [--host 127.0.0.1] [--port 7860] [--models-dir saved_models] [--share]`."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ui", description="The seq2seq_app Gradio demo.")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--models-dir", default="saved_models", help="folder holding the SavedModel folders")
    parser.add_argument("--share", action="store_true", help="ask Gradio for a public share link")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.models_dir):
        print(f"note: no folder {args.models_dir!r}; every tab will say how to train its model")

    from ui.app import build_demo, serve
    from ui.catalog import load_models

    serve(build_demo(load_models(args.models_dir)), args.host, args.port, args.share)


if __name__ == "__main__":
    main()
