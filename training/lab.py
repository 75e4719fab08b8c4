"""The RNN lab's experiments from the command line: `python -m training.lab EXPERIMENT --help`.

    python -m training.lab gradients --length 60 --json gradients.json
    python -m training.lab memory --cells lstm,gru,coupled_lstm --length 41
    python -m training.lab inside --model-dir saved_models/sentiment_nsmc --text '연기는 좋은데 지루하다'
    python -m training.lab depth --cells gru --length 21
    python -m training.lab cost          # ms per step of every registry cell next to lstm

Each prints a table and, with `--json OUT`, writes the numbers (see docs/lab.md for the schemas).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from seq2seq_app.core.layers.rnn import CELLS
from seq2seq_app.lab import cost, depth, gradients, inside, memory
from seq2seq_app.lab.cells import LAB_CELLS, parse_cells
from training.env import quiet_tensorflow

EXPERIMENTS = ("gradients", "memory", "inside", "depth", "cost")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.lab",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("experiment", choices=EXPERIMENTS)
    parser.add_argument(
        "--cells", default=None, help=f"comma-separated, from {','.join(LAB_CELLS)} (default: all)"
    )
    parser.add_argument(
        "--length",
        type=int,
        default=None,
        help="steps per sequence (gradients: T, default 60; memory: longest lag + 1, default 41; cost: 100)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-steps", type=int, default=None, help="Adam updates per cell")
    parser.add_argument("--units", type=int, default=None, help="state size (default 32; cost: 256)")
    parser.add_argument("--model-dir", type=Path, default=None, help="inside: a shipped SavedModel folder")
    parser.add_argument("--text", default=None, help="inside: the review or (translator) Spanish sentence")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers to this file")
    return parser


def run(args: argparse.Namespace) -> dict:
    """Runs the chosen experiment with the flags that were given (the rest keep their defaults)."""
    given = {k: v for k, v in (("units", args.units), ("train_steps", args.train_steps)) if v is not None}
    if args.experiment == "gradients":
        length = {"length": args.length} if args.length else {}
        return gradients.gradients_experiment(parse_cells(args.cells), seed=args.seed, **length, **given)
    if args.experiment == "memory":
        lags = memory.LAGS
        if args.length:
            lags = tuple(lag for lag in memory.LAGS if lag < args.length - 1) + (args.length - 1,)
        return memory.memory_experiment(parse_cells(args.cells), lags, seed=args.seed, **given)
    if args.experiment == "inside":
        if args.model_dir is None or not args.text:
            raise ValueError("inside needs --model-dir and --text")
        card = json.loads((args.model_dir / "model_card.json").read_text()) if args.model_dir.is_dir() else {}
        if card.get("task") == "translate":
            return inside.translator_inside(args.model_dir, args.text)
        return inside.sentiment_inside(args.model_dir, args.text)
    if args.experiment == "depth":
        cells = parse_cells(args.cells or "gru")
        if len(cells) != 1:
            raise ValueError("depth compares stacks of one cell: give one name in --cells")
        cell = cells[0]
        lags = depth.LAGS
        if args.length:
            lags = tuple(lag for lag in depth.LAGS if lag < args.length - 1) + (args.length - 1,)
        return depth.depth_experiment(cell, lags, seed=args.seed, **given)
    cells = parse_cells(args.cells, default=tuple(CELLS))
    return cost.cost_experiment(cells, length=args.length or 100, units=args.units or 256)


def table(experiment: str, result: dict) -> str:
    """The numbers as aligned text rows."""
    if experiment == "inside":
        return (
            "tokens: "
            + " ".join(result["tokens"])
            + "".join(f"\n{key}: {result[key]}" for key in ("score", "model_score", "match") if key in result)
        )
    if experiment == "depth":
        return "\n".join(
            f"{c['layers']} layer(s), {'bi' if c['bidirectional'] else 'uni'}: "
            + "  ".join(f"L={lag}: {a:.2f}" for lag, a in zip(c["lag"], c["accuracy"]))
            + f"  ({c['parameters']} parameters, {c['train_seconds']} s)"
            for c in result["configs"]
        )
    rows = []
    for name, values in result["cells"].items():
        if experiment == "gradients":
            init, trained = values["init"], values["trained"]
            rows.append(
                f"{name:16} ‖∂L/∂h_0‖ init {_g(init[0])} trained {_g(trained[0])}"
                f"   ‖∂L/∂h_T-1‖ init {_g(init[-1])} trained {_g(trained[-1])}"
            )
        elif experiment == "memory":
            cells = "  ".join(f"L={lag}: {acc:.2f}" for lag, acc in zip(values["lag"], values["accuracy"]))
            rows.append(f"{name:16} {cells}")
        else:
            f, t = values["forward_ratio_to_lstm"], values["train_ratio_to_lstm"]
            rows.append(
                f"{name:16} forward {values['forward_ms']:.3f} ms/step ({f:.2f}× lstm)"
                f"  train {values['train_ms']:.3f} ms/step ({t:.2f}× lstm)"
            )
    if experiment == "gradients":
        forward = result["forward"]
        rows.append(f"forward ‖h_t‖ at t=T-1: tanh {_g(forward['tanh'][-1])}, relu {_g(forward['relu'][-1])}")
    return "\n".join(rows)


def _g(value: float | None) -> str:
    return "overflow" if value is None else f"{value:.2e}"


def main(argv: Sequence[str] | None = None) -> None:
    quiet_tensorflow()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = run(args)
    except ValueError as e:
        parser.error(str(e))
    print(table(args.experiment, result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
