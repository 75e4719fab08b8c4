"""Throughput and latency benchmarks (a script, not a test): `python -m training.bench --help`.

Examples:
    python -m training.bench translate --model saved_models/translate_spa_en \\
        --data ../shared/data/translation/spa-eng/spa.txt
    python -m training.bench sentiment --model saved_models/sentiment_nsmc \\
        --data ../shared/data/nsmc/ratings_train.txt
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from training import flops
from training.flags import non_negative_int
from training.hardware import cpu_description, cpu_summary, matmul_peak_gflops
from training.strategy import configure_precision, machine_description

THROUGHPUT_PASSES = 2  # passes over the throughput items, every batch timed under each function


def latency_ms(fn: Callable[[], object], repeats: int) -> dict[str, float]:
    """p50/p95 wall time of `fn` in milliseconds, after three warm-up calls."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return _percentiles(times)


def _percentiles(times_ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(float(np.percentile(times_ms, 50)), 2),
        "p95_ms": round(float(np.percentile(times_ms, 95)), 2),
    }


def side_by_side(
    fns: dict[str, Callable[[list[str]], object]], texts: list[str], repeats: int, batch: int = 64
) -> dict[str, dict]:
    """Single-text latency and batch throughput of several functions, measured interleaved.

    Every latency sample times each function on the same text one after the other, and so does
    every batch of the throughput passes, so a change in the machine's load during the run falls
    on all of them alike and their ratios hold (timing each function's whole pass in turn, best
    of two, gave 0.84x to 1.23x for the same two exports on a machine whose speed drifted).
    Whichever runs right after another model finds the caches holding that model's weights (with
    a fixed order, two exports of the same weights with near-identical graphs measured 1.03–1.05x
    one way round and 0.96–1.01x the other), so the samples and batches go through every order
    of the functions in turn, each running first, and right after each other one, equally often,
    and a batch's second pass is led by another function than its first.
    """
    for fn in fns.values():
        for text in texts[:3]:
            fn([text])
    orders = list(itertools.permutations(fns))
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(repeats):
        text = texts[i % len(texts)]
        for name in orders[i % len(orders)]:
            start = time.perf_counter()
            fns[name]([text])
            times[name].append((time.perf_counter() - start) * 1000)
    chunks = [texts[i : i + batch] for i in range(0, len(texts), batch)]
    for fn in fns.values():
        fn(chunks[0])  # a first call at the batch size
    seconds = dict.fromkeys(fns, 0.0)
    for i, chunk in enumerate(chunks * THROUGHPUT_PASSES):
        # Batch j of pass p takes order j + p: each batch is led by another function every pass,
        # whatever the number of batches.
        for name in orders[(i % len(chunks) + i // len(chunks)) % len(orders)]:
            start = time.perf_counter()
            fns[name](chunk)
            seconds[name] += time.perf_counter() - start
    items = len(texts) * THROUGHPUT_PASSES
    return {
        name: {**_percentiles(times[name]), f"batch{batch}_per_s": round(items / seconds[name], 1)}
        for name in fns
    }


def string_signature(module) -> Callable[[list[str]], object]:
    """A call of the SavedModel's signature (serving_default first) that takes one string batch."""
    names = sorted(module.signatures.keys(), key=lambda n: n != "serving_default")
    for name in names:
        fn = module.signatures[name]
        inputs = fn.structured_input_signature[1]
        if len(inputs) == 1 and next(iter(inputs.values())).dtype == tf.string:
            key = next(iter(inputs))
            return lambda batch, fn=fn, key=key: fn(**{key: tf.constant(batch)})
    raise ValueError(f"no signature of the SavedModel takes a single string batch (it has {names})")


def bench_translate_inference(
    model_dir: Path, sentences: list[str], repeats: int, reference: Path | None = None
) -> dict:
    """Greedy and beam-4 latency and batch-64 throughput, and their ratios; with `reference`,
    that SavedModel's string signature timed interleaved with our greedy search, and ours over it.

    The reference is timed in a rotation of its own with our greedy search, not beside our beam
    search too: the beam search reads our weights, so in one rotation of three our greedy search
    would often follow it with warm caches where the reference never does (a copy of our export
    timed that way measured 0.94x its own p50)."""
    module = tf.saved_model.load(str(model_dir))
    greedy = module.signatures["translate"]
    beam = module.signatures["translate_beam"]
    ours = {
        "greedy": lambda batch: greedy(text=tf.constant(batch)),
        "beam4": lambda batch: beam(
            text=tf.constant(batch), beam_size=tf.constant(4), length_penalty=tf.constant(0.6)
        ),
    }
    results = side_by_side(ours, sentences, repeats)
    ratios = {
        "beam4_over_greedy_p50": _ratio(results["beam4"]["p50_ms"], results["greedy"]["p50_ms"]),
        "beam4_over_greedy_throughput": _ratio(
            results["beam4"]["batch64_per_s"], results["greedy"]["batch64_per_s"]
        ),
    }
    if reference is not None:
        pair = {"greedy": ours["greedy"], "reference": string_signature(tf.saved_model.load(str(reference)))}
        against = side_by_side(pair, sentences, repeats)
        results["reference"] = {
            **against["reference"],
            "model": str(reference),
            "greedy_beside_it": against["greedy"],
        }
        ratios["greedy_over_reference_p50"] = _ratio(
            against["greedy"]["p50_ms"], against["reference"]["p50_ms"]
        )
        ratios["greedy_over_reference_throughput"] = _ratio(
            against["greedy"]["batch64_per_s"], against["reference"]["batch64_per_s"]
        )
    return {**results, "ratios": ratios}


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None  # None, not NaN, which is not JSON


def timed_fit(model, dataset: tf.data.Dataset, steps: int) -> tuple[list, float]:
    """Fits `steps` batches after 20 warm-up batches; returns the timed batches and seconds."""
    batches = list(dataset.repeat().take(steps + 20))  # a small --data file still fills every step
    spec = dataset.element_spec

    def as_dataset(items):
        return tf.data.Dataset.from_generator(lambda: iter(items), output_signature=spec)

    model.fit(as_dataset(batches[:20]), verbose=0)  # trace and warm up
    timed = batches[20:]
    start = time.perf_counter()
    model.fit(as_dataset(timed), verbose=0)
    return timed, time.perf_counter() - start


def utilisation(model, timed: list, seconds: float, batch_flops, peak_gflops: float) -> dict:
    """Model FLOPs of the timed batches (`training.flops`) per second, against the machine's peak in
    the precision the model computes in (`peak_gflops` is the fp32 one; a mixed-precision policy
    is held against the peak of its own dtype, measured here)."""
    flops = sum(batch_flops(model, x, y) for x, y in timed)
    achieved = flops / seconds / 1e9
    dtype = model.dtype_policy.compute_dtype
    if dtype != "float32":
        peak_gflops = matmul_peak_gflops(dtype=dtype)
    return {
        "model_flops": flops,
        "achieved_gflops": round(achieved, 1),
        "matmul_peak_gflops": peak_gflops,
        "peak_dtype": dtype,
        "flops_utilization": round(achieved / peak_gflops, 3),
    }


def bench_translate_training(
    card: dict, pairs: str | None, steps: int, overrides: dict, peak_gflops: float
) -> dict:
    """Non-padding target tokens per second of `fit`, on the data, text unit and hyperparameters of
    the card's training command (`pairs` replaces its sources), as the CLI prepares them."""
    import tempfile

    from seq2seq_app.translation import data
    from training import translate

    args = translate.args_from_card(card)
    if pairs:
        args.pairs, args.aligned, args.synthetic_pairs = [pairs], [], []
        args.source_file = args.target_file = args.tfds = None
    for name, value in overrides.items():
        setattr(args, name, value)
    policy = keras.mixed_precision.global_policy().name
    with tempfile.TemporaryDirectory() as run_dir:
        splits, _, _, src_vocab, tgt_vocab, _ = translate.prepare(args, Path(run_dir))
    dataset = data.make_dataset(*splits["train"], args.tokens_per_batch, args.max_length, shuffle=True)
    model = translate.build_model(args, src_vocab, tgt_vocab)
    timed, seconds = timed_fit(model, dataset, steps)
    tokens = sum(int(np.sum(y.numpy() != 0)) for _, y in timed)
    padded = sum(int(np.prod(y.shape)) for _, y in timed)
    used = utilisation(model, timed, seconds, flops.translation_batch_flops, peak_gflops)
    return {
        "target_tokens_per_s": round(tokens / seconds),
        "flops_per_target_token": round(used.pop("model_flops") / tokens),
        **used,
        "padding_fraction": round(1 - tokens / padded, 3),
        "precision_policy": policy,
        "steps": len(timed),
        "parameters": model.count_params(),
        "text_unit": args.text_unit,
        "overrides": overrides,
    }


def bench_sentiment_inference(
    model_dir: Path, reviews: list[str], repeats: int, reference: Path | None = None
) -> dict:
    """Single-review latency and batch-256 throughput; with `reference`, that SavedModel's string
    signature timed interleaved with ours, and ours over it."""
    classify = tf.saved_model.load(str(model_dir)).signatures["classify"]
    fns = {"ours": lambda batch: classify(text=tf.constant(batch))}
    if reference is not None:
        fns["reference"] = string_signature(tf.saved_model.load(str(reference)))
    results = side_by_side(fns, reviews, repeats, batch=256)
    if reference is None:
        return results["ours"]
    results["reference"]["model"] = str(reference)
    results["ratios"] = {
        "over_reference_p50": _ratio(results["ours"]["p50_ms"], results["reference"]["p50_ms"]),
        "over_reference_throughput": _ratio(
            results["ours"]["batch256_per_s"], results["reference"]["batch256_per_s"]
        ),
    }
    return results


def bench_sentiment_training(
    card: dict,
    train_texts: list[str],
    train_labels: list[int],
    steps: int,
    overrides: dict,
    peak_gflops: float,
) -> dict:
    """Reviews per second of `fit` with the card's hyperparameters."""
    from seq2seq_app.core.vocabulary import Vocabulary
    from seq2seq_app.sentiment import data
    from seq2seq_app.sentiment.review_tokenizer import ReviewTokenizer
    from training.sentiment import build_model

    hp = {**card["hyperparameters"], **overrides}
    policy = keras.mixed_precision.global_policy().name
    units, bigrams = ReviewTokenizer(Vocabulary([]), None, hp["unit"], hp["max_tokens"]).split(
        tf.constant(train_texts)
    )
    decoded = [[[t.decode() for t in row] for row in r.to_list()] for r in (units, bigrams)]
    vocab = Vocabulary.build(decoded[0], hp["vocab_size"], hp["min_count"])
    bigram_vocab = (
        Vocabulary.build(decoded[1], hp["bigram_vocab_size"], hp["min_count"])
        if hp["bigram_vocab_size"]
        else None
    )
    tokenizer = ReviewTokenizer(vocab, bigram_vocab, hp["unit"], hp["max_tokens"])
    dataset = data.make_dataset(
        data.LabeledReviews(train_texts, train_labels), tokenizer, hp["batch_size"], shuffle=True
    )
    model = build_model(argparse.Namespace(**hp), tokenizer)
    timed, seconds = timed_fit(model, dataset, steps)
    reviews = sum(int(y.shape[0]) for _, y in timed)
    used = utilisation(model, timed, seconds, flops.sentiment_batch_flops, peak_gflops)
    return {
        "reviews_per_s": round(reviews / seconds),
        "flops_per_review": round(used.pop("model_flops") / reviews),
        **used,
        "precision_policy": policy,
        "steps": len(timed),
        "parameters": model.count_params(),
        "overrides": overrides,
    }


def bench_caption_inference(
    model_dir: Path, images: list[bytes], repeats: int, reference: Path | None = None
) -> dict:
    """Greedy and beam-3 latency and greedy batch-16 throughput; with `reference`, that
    captioner's image-batch signature timed interleaved with ours, and ours over it."""
    module = tf.saved_model.load(str(model_dir))
    greedy, beam = module.signatures["caption"], module.signatures["caption_beam"]
    fns = {"greedy": lambda batch: greedy(image=tf.constant(batch))}
    if reference is not None:
        fns["reference"] = string_signature(tf.saved_model.load(str(reference)))
    results = side_by_side(fns, images, repeats, batch=16)
    singles = iter(images * (repeats // max(1, len(images)) + 2))
    results["beam3"] = latency_ms(
        lambda: beam(image=tf.constant([next(singles)]), beam_size=tf.constant(3)), max(10, repeats // 4)
    )
    results["ratios"] = {
        "beam3_over_greedy_p50": _ratio(results["beam3"]["p50_ms"], results["greedy"]["p50_ms"])
    }
    if reference is not None:
        results["reference"]["model"] = str(reference)
        results["ratios"]["greedy_over_reference_p50"] = _ratio(
            results["greedy"]["p50_ms"], results["reference"]["p50_ms"]
        )
        results["ratios"]["greedy_over_reference_throughput"] = _ratio(
            results["greedy"]["batch16_per_s"], results["reference"]["batch16_per_s"]
        )
    return results


def bench_caption_training(card: dict, train, steps: int, peak_gflops: float) -> dict:
    """Images per second through the frozen backbone (feature caching) and captions per second
    of decoder training on cached features, with the card's hyperparameters."""
    from seq2seq_app.captioning import data
    from seq2seq_app.captioning.backbones import make_backbone
    from seq2seq_app.core.text import tokenize_all
    from seq2seq_app.core.vocabulary import Vocabulary
    from training.caption import build_model

    hp, backbone_card = card["hyperparameters"], card["backbone"]
    weights = None if backbone_card["weights"].lower() == "none" else backbone_card["weights"]
    policy = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("float32")  # the backbone runs in float32, as in training
    backbone = make_backbone(backbone_card["name"], weights, backbone_card["image_size"])
    images = train.images[:256]
    data.extract_regions(backbone, images[:32], backbone_card["image_size"])  # warm up
    start = time.perf_counter()
    features = data.extract_regions(backbone, images, backbone_card["image_size"])
    extraction = len(images) / (time.perf_counter() - start)
    keras.mixed_precision.set_global_policy(policy)
    vocab = Vocabulary.build(
        tokenize_all([c for caps in train.captions for c in caps], True), hp["vocab_size"], hp["min_count"]
    )
    model = build_model(argparse.Namespace(**hp), vocab, *features.shape[1:])
    dataset = data.make_dataset(
        features,
        data.encode_captions(train.captions[:256], vocab, hp["max_length"]),
        hp["batch_size"],
        shuffle=True,
    ).repeat()
    timed, seconds = timed_fit(model, dataset, steps)
    captions = sum(int(y.shape[0]) for _, y in timed)
    used = utilisation(model, timed, seconds, flops.caption_batch_flops, peak_gflops)
    return {
        "backbone_images_per_s": round(extraction, 1),
        "decoder_captions_per_s": round(captions / seconds),
        "flops_per_caption": round(used.pop("model_flops") / captions),
        **used,
        "precision_policy": policy,
        "steps": len(timed),
    }


def _held_out(card: dict, split_fn, data):
    """The held-out test split the model never saw, carved exactly as training carved it."""
    split = card.get("data", {})
    return split_fn(
        data,
        split.get("validation_fraction", 0.03),
        split.get("test_fraction", 0.03),
        split.get("split_seed", 0),
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m training.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("task", choices=["translate", "sentiment", "caption"])
    parser.add_argument("--model", help="SavedModel folder (default: the shipped model of the task)")
    parser.add_argument(
        "--data",
        help="file to time on (default: the training file the model's card names, else the shipped "
        "model's); translate: also trained on, in place of the card's sources",
    )
    parser.add_argument(
        "--items",
        type=int,
        help="held-out sentences/reviews used for throughput (default: 640 sentences, 2,560 reviews)",
    )
    parser.add_argument("--repeats", type=int, default=200, help="single-item calls per latency figure")
    parser.add_argument(
        "--train-steps", type=non_negative_int, default=60, help="timed training steps (0 skips training)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="train with this hyperparameter changed, e.g. --set units=256 (repeatable)",
    )
    parser.add_argument(
        "--reference",
        help="another SavedModel of the task (a signature taking one batch of strings: texts, or "
        "image bytes) timed interleaved with ours; prints ours over it",
    )
    parser.add_argument(
        "--mixed-precision",
        choices=["auto", "on", "off"],
        default="auto",
        help="training precision, as the training CLIs' flag (off: float32 on any machine)",
    )
    parser.add_argument("--skip-inference", action="store_true")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    defaults = {
        "translate": ("saved_models/translate_spa_en", "../shared/data/translation/spa-eng/spa.txt"),
        "sentiment": ("saved_models/sentiment_nsmc", "../shared/data/nsmc/ratings_train.txt"),
        "caption": ("saved_models/caption_flickr8k", "../shared/data/flickr8k"),
    }[args.task]
    model_dir = Path(args.model or defaults[0])
    card_path = model_dir / "model_card.json"
    card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.exists() else {}
    # A model's own training file, so `--model saved_models/sentiment_imdb` times IMDB reviews (a
    # card of several sources names them joined by "; ", and the first is the main one).
    source = str(card.get("data", {}).get("source") or "").split("; ")[0] or defaults[1]
    data_path = args.data or source
    if not Path(data_path).exists():
        raise SystemExit(f"{data_path} (the model card's training file) does not exist here; give --data")
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    configure_precision(args.mixed_precision)
    cpu = cpu_description()
    peak = matmul_peak_gflops()
    print(f"{cpu_summary(cpu)}; fp32 matmul peak {peak} GFLOP/s", flush=True)
    results = {"machine": machine_description(), "cpu": cpu, "matmul_peak_gflops": peak}
    if args.task == "translate":
        from seq2seq_app.translation import data

        corpus = data.read_pair_file(data_path, 1, 0)
        train, _, test = _held_out(card, data.split_corpus, corpus)
        if not args.skip_inference:
            results["inference"] = bench_translate_inference(
                model_dir,
                test.sources[: args.items or 640],
                args.repeats,
                Path(args.reference) if args.reference else None,
            )
        if args.train_steps and card:
            results["training"] = bench_translate_training(card, args.data, args.train_steps, overrides, peak)
    elif args.task == "caption":
        from seq2seq_app.captioning import data

        train, held_out = data.read_flickr8k(data_path, "train"), data.read_flickr8k(data_path, "dev")
        if not args.skip_inference:
            results["inference"] = bench_caption_inference(
                model_dir,
                held_out.images[: args.items or 64],
                args.repeats,
                Path(args.reference) if args.reference else None,
            )
        if args.train_steps and card:
            results["training"] = bench_caption_training(card, train, args.train_steps, peak)
    else:
        from seq2seq_app.sentiment import data

        hp = card.get("hyperparameters", {})
        columns = card.get("data", {})
        reviews = data.read_labeled_tsv(
            data_path, columns.get("text_column", "document"), columns.get("label_column", "label")
        )
        train, _, test = _held_out(card, data.split_reviews, reviews)
        if not args.skip_inference:
            results["inference"] = bench_sentiment_inference(
                model_dir,
                test.texts[: args.items or 2560],
                args.repeats,
                Path(args.reference) if args.reference else None,
            )
        if args.train_steps and hp:
            results["training"] = bench_sentiment_training(
                card, train.texts, train.labels, args.train_steps, overrides, peak
            )
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
