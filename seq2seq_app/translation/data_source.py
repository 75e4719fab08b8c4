"""Several training corpora mixed into one run: weights, back-translation tags, honest splits.

Each source is a pair file or a pair of line-aligned files with a weight (an oversampling factor:
news ×3 is seen three times an epoch, 0.5 half of it) and a flag for synthetic, back-translated
pairs. A synthetic pair's source gets `BACK_TRANSLATION_TAG` as its first token, so the model can
tell machine-made Spanish from real Spanish and learns from the English side without copying the
synthetic side's style (tagged back-translation, Caswell et al., 2019). Real inputs never carry the
tag: the tokenizer splits brackets off, so no typed text becomes the one token "[BT]".

Validation and test pairs are carved from each genuine source by the usual grouped split; training
pairs of other sources whose source sentence was carved are dropped, and so are synthetic pairs
whose source or target was (back-translating the English of a test pair would otherwise train on
its reference). Synthetic pairs never go into validation or test: they would measure the
back-translation model.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Sequence

from seq2seq_app.translation.data import ParallelCorpus, read_aligned_files, read_pair_file, split_corpus

BACK_TRANSLATION_TAG = "[BT]"


@dataclasses.dataclass(frozen=True)
class DataSource:
    """One training corpus of a mixture.

    Args:
        path: a tab-separated pair file, or the source side of line-aligned files.
        target_path: the target side of line-aligned files; None for a pair file.
        weight: oversampling factor (> 0), fractional parts sampled.
        synthetic: back-translated pairs, tagged and kept out of validation and test.

    Example:
    >>> DataSource.parse("news*3", aligned_suffixes=("es", "en"))
    DataSource(path='news.es', target_path='news.en', weight=3.0, synthetic=False)
    """

    path: str
    target_path: str | None = None
    weight: float = 1.0
    synthetic: bool = False

    @classmethod
    def parse(
        cls, spec: str, aligned_suffixes: tuple[str, str] | None = None, synthetic: bool = False
    ) -> DataSource:
        """A source from `PATH` or `PATH*WEIGHT`; with `aligned_suffixes`, PATH is the prefix of
        `PATH.<source suffix>` and `PATH.<target suffix>`."""
        path, weight = spec, 1.0
        if "*" in spec:
            path, _, text = spec.rpartition("*")
            try:
                weight = float(text)
            except ValueError:
                weight = 0.0
            if not path or not weight > 0 or weight == float("inf"):
                raise ValueError(f"wants PATH or PATH*WEIGHT with a positive number as WEIGHT, got {spec!r}")
        if aligned_suffixes is None:
            return cls(path, None, weight, synthetic)
        return cls(f"{path}.{aligned_suffixes[0]}", f"{path}.{aligned_suffixes[1]}", weight, synthetic)

    def read(self, source_column: int, target_column: int) -> ParallelCorpus:
        if self.target_path is None:
            return read_pair_file(self.path, source_column, target_column)
        return read_aligned_files(self.path, self.target_path)

    def describe(self) -> str:
        return self.path if self.target_path is None else f"{self.path} + {self.target_path}"


def oversampled(n: int, weight: float, seed: int = 0) -> list[int]:
    """Indices of `n` items repeated `weight` times: whole copies in order, then a seeded sample for
    the fraction (weight 1 is `range(n)` itself).

    >>> oversampled(4, 2.5, seed=1)
    [0, 1, 2, 3, 0, 1, 2, 3, 1, 2]
    """
    whole = int(weight)
    extra = random.Random(seed).sample(range(n), round((weight - whole) * n))
    return [i for _ in range(whole) for i in range(n)] + sorted(extra)


_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


def words_key(sentence: str) -> str:
    """A sentence's words, lowercased: what two copies of it share however they were spaced or
    punctuated."""
    return " ".join(re.findall(r"\w+", sentence.lower()))


def split_mixture(
    sources: Sequence[tuple[DataSource, ParallelCorpus]], validation: float, test: float, seed: int = 0
) -> tuple[list[ParallelCorpus], ParallelCorpus, ParallelCorpus, list[dict]]:
    """Training pairs of each source (in `sources`' order, not yet oversampled), the validation and
    test pairs of all genuine sources (joined in that order; `per_source_tests` cuts them apart), and
    a report row per source.

    Raises:
        ValueError: bad fractions.
    """
    carved = {}
    for i, (source, corpus) in enumerate(sources):
        if not source.synthetic:
            carved[i] = split_corpus(corpus, validation, test, seed)
    held = {i: [val, tst] for i, (_, val, tst) in carved.items()}
    held_sources = {s for parts in held.values() for part in parts for s in part.sources}
    # Another source, or a back-translation (which respaces text and splits it into sentences),
    # may hold a held-out sentence in another form: those are matched by their words.
    source_keys = {i: {words_key(s) for part in parts for s in part.sources} for i, parts in held.items()}
    target_keys = {
        words_key(piece)
        for parts in held.values()
        for part in parts
        for t in part.targets
        for piece in (t, *_SENTENCE_END.split(t))
    }
    trains, report = [], []
    for i, (source, corpus) in enumerate(sources):
        train = carved[i][0] if i in carved else corpus
        other_keys = set().union(*(keys for j, keys in source_keys.items() if j != i))
        keep = [
            k
            for k, (s, t) in enumerate(zip(train.sources, train.targets))
            if s not in held_sources
            and words_key(s) not in other_keys
            and not (source.synthetic and words_key(t) in target_keys)
        ]
        trains.append(ParallelCorpus([train.sources[k] for k in keep], [train.targets[k] for k in keep]))
        report.append(
            {
                "source": source.describe(),
                "pairs": len(corpus),
                "malformed_lines": corpus.malformed,
                "weight": source.weight,
                "synthetic": source.synthetic,
                "train_pairs": len(keep),
                "held_out_overlap_dropped": len(train) - len(keep),
                "validation_pairs": len(carved[i][1]) if i in carved else 0,
                "test_pairs": len(carved[i][2]) if i in carved else 0,
            }
        )

    def joined(parts: list[ParallelCorpus]) -> ParallelCorpus:
        return ParallelCorpus([s for p in parts for s in p.sources], [t for p in parts for t in p.targets])

    return trains, joined([c[1] for c in carved.values()]), joined([c[2] for c in carved.values()]), report


def per_source_tests(test: ParallelCorpus, report: Sequence[dict]) -> list[tuple[str, ParallelCorpus]]:
    """The test pairs `split_mixture` joined, cut back into each genuine source's (in its order,
    by the counts of its report rows); sources without test pairs are left out."""
    parts, start = [], 0
    for row in report:
        n = 0 if row["synthetic"] else row["test_pairs"]
        if n:
            parts.append(
                (
                    row["source"],
                    ParallelCorpus(test.sources[start : start + n], test.targets[start : start + n]),
                )
            )
        start += n
    return parts
