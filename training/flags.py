"""Command-line flags every training CLI shares, and `--config FILE` defaults.

Kept apart from the TensorFlow code so that parsing (and `--help`, and the cluster launcher)
never imports TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path


def parse_with_config(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parses flags, taking defaults from `--config FILE` (JSON) when given; flags win.

    The config's keys are flag names with underscores (`{"units": 320, "cell": "gru"}`). Each is
    handed to argparse as the flag it names, ahead of the command line, so it is checked and
    converted like a flag typed by hand; unknown keys are an error, so a typo cannot silently
    fall back to a default.
    """
    parser.add_argument("--config", help="JSON file of flag values (flags given on the command line win)")
    argv = list(sys.argv[1:] if argv is None else argv)
    first, _ = parser.parse_known_args(argv)
    if not first.config:
        return parser.parse_args(argv)
    try:
        config = json.loads(Path(first.config).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        parser.error(f"cannot read --config {first.config}: {e}")
    if not isinstance(config, dict):
        parser.error(f"--config {first.config} must hold a JSON object of flag values")
    # Each key must name a flag, even a switch left off with `false`: parse each on its own.
    unknown = [
        k for k, v in config.items() if parser.parse_known_args(config_tokens({k: v}) or [_option(k)])[1]
    ]
    if unknown:
        parser.error(f"unknown keys in {first.config}: {', '.join(sorted(unknown))}")
    # The last value wins, the command line's; a repeatable flag given there replaces the config's
    # list instead of adding to it.
    given = {
        a.dest
        for a in parser._actions
        if isinstance(a, argparse._AppendAction) and getattr(first, a.dest) != a.default
    }
    config = {k: v for k, v in config.items() if k.replace("-", "_") not in given}
    return parser.parse_args(config_tokens(config) + argv)


def config_tokens(config: dict) -> list[str]:
    """Command-line tokens for a config's values: `true` switches a flag on, `false`/`null` leave it,
    a list gives a repeatable flag once per item.

    >>> config_tokens({"units": 12, "bidirectional": True, "flip": False, "pairs": ["a", "b*3"]})
    ['--units=12', '--bidirectional', '--pairs=a', '--pairs=b*3']
    """
    tokens = []
    for key, value in config.items():
        option = _option(key)
        if value is True:
            tokens.append(option)
        elif isinstance(value, list):
            tokens.extend(f"{option}={item}" for item in value)
        elif value is not False and value is not None:
            tokens.append(f"{option}={value}")
    return tokens


def _option(key: str) -> str:
    return "--" + key.replace("_", "-")


def add_common_flags(parser: argparse.ArgumentParser, run_dir: str, export_dir: str) -> None:
    """Flags every training CLI has, with the same names and meanings."""
    g = parser.add_argument_group("training")
    g.add_argument("--run-dir", default=run_dir, help="checkpoints, logs and vocabularies (resume from here)")
    g.add_argument("--export-dir", default=export_dir, help="where the SavedModel and model card go")
    g.add_argument("--epochs", type=positive_int, default=30)
    g.add_argument("--learning-rate", type=float, default=1e-3)
    g.add_argument("--patience", type=int, default=3, help="early-stopping patience in epochs")
    g.add_argument(
        "--checkpoint-every",
        type=int,
        default=500,
        help="steps between resumable backups (a killed run loses at most this many)",
    )
    g.add_argument(
        "--average-last",
        type=non_negative_int,
        default=0,
        help="keep the last N epochs' weights and export their mean when it has a lower validation "
        "loss than the best epoch (0 or 1: the best epoch)",
    )
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--validation-fraction", type=float, default=0.03)
    g.add_argument("--test-fraction", type=float, default=0.03)
    g.add_argument(
        "--strategy",
        choices=["default", "mirrored", "multi_worker"],
        default="default",
        help="tf.distribute strategy; multi_worker reads the cluster from TF_CONFIG",
    )
    g.add_argument(
        "--mixed-precision",
        choices=["auto", "on", "off"],
        default="auto",
        help="on: float16 on GPU, bfloat16 on CPU; auto: on where the hardware has fast "
        "low-precision matmuls (GPU, or a CPU with AVX512-BF16/AMX)",
    )
    g.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2], help="Keras progress bar mode")


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer of at least 0."""
    return _int_at_least(text, 0)


def non_negative_float(text: str) -> float:
    """argparse type: a finite number of at least 0."""
    value = float(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number of at least 0, got {text}")
    return value


def _int_at_least(text: str, minimum: int) -> int:
    value = int(text)
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
    return value


def add_recurrent_flags(group, cell: str, embedding_dim: int, units: int, dropout: float) -> None:
    """The recurrent-model flags every CLI shares (each task with its own defaults)."""
    from seq2seq_app.core.layers.rnn import CELLS  # here: flags.py itself imports no TensorFlow

    cells = [cell] + [c for c in CELLS if c != cell]
    group.add_argument("--cell", choices=cells, default=cell)
    group.add_argument("--embedding-dim", type=positive_int, default=embedding_dim)
    group.add_argument("--units", type=positive_int, default=units)
    group.add_argument("--dropout", type=float, default=dropout)


def add_decoder_flags(group) -> None:
    """Flags of the attention decoder (translation and captioning)."""
    group.add_argument("--decoder-layers", type=positive_int, default=1)
    group.add_argument("--attention", choices=["additive", "multiplicative"], default="additive")
