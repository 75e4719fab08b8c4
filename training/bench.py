"""Throughput and latency benchmarks (a script, not a test): `python -m training.bench --help`.

Example:
    python -m training.bench translate --model saved_models/translate_spa_en \\
        --pairs ../shared/data/translation/spa-eng/spa.txt
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from training import common

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def latency_ms(fn: Callable[[], object], repeats: int) -> dict[str, float]:
    """p50/p95 wall time of `fn` in milliseconds, after three warm-up calls."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": round(float(np.percentile(times, 50)), 2), "p95_ms": round(float(np.percentile(times, 95)), 2)}


def throughput(fn: Callable[[list[str]], object], texts: list[str], batch: int) -> float:
    """Items per second processing `texts` in batches of `batch` (after one warm-up batch)."""
    fn(texts[:batch])
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        fn(texts[i : i + batch])
    return round(len(texts) / (time.perf_counter() - start), 1)


def bench_translate_inference(model_dir: Path, sentences: list[str], repeats: int) -> dict:
    module = tf.saved_model.load(str(model_dir))
    greedy = module.signatures["translate"]
    beam = module.signatures["translate_beam"]

    def run_greedy(batch):
        return greedy(text=tf.constant(batch))

    def run_beam(batch):
        return beam(text=tf.constant(batch), beam_size=tf.constant(4), length_penalty=tf.constant(0.6))

    results = {}
    for name, fn in (("greedy", run_greedy), ("beam4", run_beam)):
        singles = iter(sentences * (repeats // max(1, len(sentences)) + 2))
        results[name] = {
            **latency_ms(lambda: fn([next(singles)]), repeats),
            "batch64_sentences_per_s": throughput(fn, sentences, 64),
        }
    return results


def bench_translate_training(card: dict, pairs: str, steps: int, overrides: dict) -> dict:
    """Non-padding target tokens per second of `fit` with the card's hyperparameters."""
    from seq2seq_app.data import translation as data
    from seq2seq_app.vocabulary import Vocabulary
    from training.translate import build_model

    hp = {**card["hyperparameters"], **overrides}
    policy = common.configure_precision("auto")
    corpus = data.read_pair_file(pairs, 1, 0)
    src_tok = data.tokenize_all(corpus.sources, True)
    tgt_tok = data.tokenize_all(corpus.targets, False)
    src_vocab = Vocabulary.build(src_tok, hp["source_vocab_size"], hp["min_count"])
    tgt_vocab = Vocabulary.build(tgt_tok, hp["target_vocab_size"], hp["min_count"])
    s, t, _ = data.encode_pairs(src_tok, tgt_tok, src_vocab, tgt_vocab, hp["max_length"])
    dataset = data.make_dataset(s, t, hp["tokens_per_batch"], hp["max_length"], shuffle=True)
    batches = list(dataset.take(steps + 20))
    model = build_model(argparse.Namespace(**hp), src_vocab, tgt_vocab)
    spec = dataset.element_spec

    def as_dataset(items):
        return tf.data.Dataset.from_generator(lambda: iter(items), output_signature=spec)

    model.fit(as_dataset(batches[:20]), verbose=0)  # trace and warm up
    timed = batches[20:]
    tokens = sum(int(np.sum(y.numpy() != 0)) for _, y in timed)
    padded = sum(int(np.prod(y.shape)) for _, y in timed)
    start = time.perf_counter()
    model.fit(as_dataset(timed), verbose=0)
    seconds = time.perf_counter() - start
    return {"target_tokens_per_s": round(tokens / seconds), "padding_fraction": round(1 - tokens / padded, 3),
            "precision_policy": policy, "steps": len(timed), "parameters": model.count_params(),
            "overrides": overrides}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=["translate"])
    parser.add_argument("--model", default="saved_models/translate_spa_en")
    parser.add_argument("--pairs", default="../shared/data/translation/spa-eng/spa.txt",
                        help="sentences to translate and to train on")
    parser.add_argument("--sentences", type=int, default=640, help="held-out sentences used for timing")
    parser.add_argument("--repeats", type=int, default=200, help="single-sentence calls per latency figure")
    parser.add_argument("--train-steps", type=int, default=60, help="timed training steps (0 skips training)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=INT",
                        help="train with this hyperparameter changed, e.g. --set units=256 (repeatable)")
    parser.add_argument("--skip-inference", action="store_true")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)

    from seq2seq_app.data import translation as data

    card_path = Path(args.model) / "model_card.json"
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    corpus = data.read_pair_file(args.pairs, 1, 0)
    # The held-out split the model never saw, carved exactly as training carved it.
    split = card.get("data", {})
    _, _, test = data.split_corpus(
        corpus, split.get("validation_fraction", 0.03), split.get("test_fraction", 0.03), split.get("split_seed", 0)
    )
    results = {"machine": common.machine_description()}
    if not args.skip_inference:
        results["inference"] = bench_translate_inference(Path(args.model), test.sources[: args.sentences], args.repeats)
    if args.train_steps and card:
        overrides = {k: int(v) for k, v in (item.split("=", 1) for item in args.set)}
        results["training"] = bench_translate_training(card, args.pairs, args.train_steps, overrides)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
