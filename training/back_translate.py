"""`python -m training.back_translate`: monolingual target-side text → synthetic parallel pairs.

Back-translation (Sennrich et al., 2016): a reverse model (e.g. English → Spanish, trained with
`python -m training.translate --source-column 0 --target-column 1`) translates real English into
synthetic Spanish; the forward model then trains on real pairs plus these, the synthetic side as
its *source*, so its English output side stays human-written. Tag the synthetic pairs when
mixing them in (Caswell et al., 2019). `--temperature 1` samples each synthetic sentence from the
reverse model instead of taking its most likely one: sampled back-translation gives the forward
model more varied sources and trained better forward models than greedy or beam output at scale
(Edunov et al., 2018).

Input lines are split into sentences, normalised for deduplication, length-filtered, and
translated in batches. The output is a pair file in spa.txt's layout (`English<TAB>Spanish`,
i.e. the monolingual text first) appended batch by batch and flushed, so a run that is stopped
resumes where it stopped with the same command: sentences already in the output are skipped.

Example:
    python -m training.back_translate --model saved_models/translate_eng_spa \\
        --input ../shared/data/translation/multi30k/train.en --output runs/bt/multi30k.tsv
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from training.env import quiet_tensorflow


def _normalise(sentence: str) -> str:
    return re.sub(r"\W+", " ", sentence.lower()).strip()


def text_of(line: str, column: int | None) -> str:
    """The text of one input line: the whole line, or tab-separated field `column`.

    A field wrapped in double quotes with `""` escapes inside (CSV-style quoting, as the IMDB
    export has) is unwrapped; HTML line breaks (`<br />`, common in scraped reviews) become spaces,
    so they neither reach the reverse model nor glue two sentences together.
    """
    if column is not None:
        fields = line.rstrip("\r\n").split("\t")
        line = fields[column] if len(fields) > column else ""
        # Only a whole field in CSV quoting: `"Who is it?" "It's me."` is a sentence, kept as it is.
        quoted = re.fullmatch(r'"((?:[^"]|"")*)"', line)
        if quoted:
            line = quoted.group(1).replace('""', '"')
    return re.sub(r"<br\s*/?>", " ", line, flags=re.IGNORECASE)


def split_into_sentences(lines: Iterable[str], batch: int = 4096) -> Iterator[str]:
    """Each non-blank line's sentences, split by the same in-graph rule the translator uses."""
    import tensorflow as tf

    from seq2seq_app.core import text

    chunk: list[str] = []

    def flush() -> Iterator[str]:
        for row in text.split_sentences(tf.constant(chunk, tf.string)).to_list():
            yield from (s.decode("utf-8") for s in row)

    for line in lines:
        if line.strip():
            chunk.append(line.strip())
        if len(chunk) >= batch:
            yield from flush()
            chunk = []
    if chunk:
        yield from flush()


def select_sentences(
    sentences: Iterable[str], min_words: int, max_words: int, seen: set[str] | None = None
) -> Iterator[str]:
    """Sentences within the word limits, each normalised form once (`seen` is updated)."""
    seen = set() if seen is None else seen
    for sentence in sentences:
        words = len(sentence.split())
        key = _normalise(sentence)
        if min_words <= words <= max_words and key and key not in seen:
            seen.add(key)
            yield sentence


def already_done(output: Path) -> set[str]:
    """Normalised monolingual sides already in the output file (for resuming)."""
    if not output.exists():
        return set()
    with open(output, encoding="utf-8", errors="replace") as f:
        return {_normalise(line.split("\t", 1)[0]) for line in f if "\t" in line}


def back_translate(
    translate, sentences: Sequence[str], output: Path, batch_size: int, verbose: int = 1
) -> int:
    """Translates `sentences` with `translate(list[str]) -> list[str]`, appending pairs to `output`.

    Empty translations are left out. Returns the number of pairs written.
    """
    import keras

    progress = keras.utils.Progbar(len(sentences), verbose=verbose, unit_name="sentence")
    written = 0
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "a", encoding="utf-8") as f:
        for i in range(0, len(sentences), batch_size):
            batch = list(sentences[i : i + batch_size])
            for source, synthetic in zip(batch, translate(batch)):
                synthetic = " ".join(synthetic.split())  # no tab or newline can break the file
                if synthetic:
                    f.write(f"{' '.join(source.split())}\t{synthetic}\n")
                    written += 1
            f.flush()
            os.fsync(f.fileno())
            progress.add(len(batch))
    return written


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.back_translate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--model", required=True, help="the reverse translator's SavedModel directory")
    parser.add_argument("--input", required=True, nargs="+", help="monolingual text files, one text a line")
    parser.add_argument("--output", required=True, help="pair file to append to (resumes if it exists)")
    parser.add_argument(
        "--column",
        type=int,
        default=None,
        help="read tab-separated field N (0-based) of each line instead of the whole line, e.g. 0 "
        "for the English of a Tatoeba pair file, 3 for the text of ../shared's IMDB file",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--beam-size", type=int, default=0, help="0 for greedy (fastest)")
    parser.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="sample each translation at this temperature (> 0; 1 samples the model's own "
        "distribution) instead of searching; not with --beam-size",
    )
    parser.add_argument("--min-words", type=int, default=3)
    parser.add_argument("--max-words", type=int, default=40)
    parser.add_argument("--limit", type=int, default=0, help="translate at most this many new sentences")
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    return parser


def run(args: argparse.Namespace) -> int:
    from seq2seq_app.translation.translator_api import LoadedTranslator

    if args.batch_size < 1 or args.min_words < 1 or args.max_words < args.min_words or args.limit < 0:
        raise SystemExit("--batch-size and --min-words must be ≥ 1, --max-words ≥ --min-words, --limit ≥ 0")
    if args.column is not None and args.column < 0:
        raise SystemExit("--column counts fields from 0")
    if args.temperature is not None and not args.temperature > 0:  # NaN too
        raise SystemExit("--temperature must be > 0")
    if args.temperature is not None and args.beam_size:
        raise SystemExit("--temperature samples instead of searching: give it or --beam-size, not both")
    try:
        translator = LoadedTranslator(args.model)
    except FileNotFoundError as e:
        raise SystemExit(str(e)) from e
    output = Path(args.output)
    seen = already_done(output)
    done = len(seen)

    def lines() -> Iterator[str]:
        for path in args.input:
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    yield from (text_of(line, args.column) for line in f)
            except OSError as e:
                raise SystemExit(f"cannot read {path}: {e}") from e

    todo = list(select_sentences(split_into_sentences(lines()), args.min_words, args.max_words, seen))
    if args.limit:
        todo = todo[: args.limit]
    print(f"{done} sentences already in {output}; {len(todo)} to translate")
    beam = args.beam_size or None
    written = back_translate(
        lambda batch: translator.translate(batch, beam_size=beam, temperature=args.temperature),
        todo,
        output,
        args.batch_size,
        args.verbose,
    )
    print(f"wrote {written} pairs to {output}")
    return written


def main(argv: list[str] | None = None) -> None:
    quiet_tensorflow()
    run(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
