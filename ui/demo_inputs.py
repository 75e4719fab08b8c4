"""The example inputs the demo offers (and the load script sends); no TensorFlow import."""

from __future__ import annotations

from pathlib import Path

EXAMPLES_DIR = Path(__file__).parent / "examples"  # images credited in examples/CREDITS.md
TRANSLATE_EXAMPLES = [
    "¿Dónde está la biblioteca?",
    "Tom no quiere ir a la escuela mañana.",
    "Me gusta mucho leer libros.",
    "Mi hermana vive en Madrid desde 2019.",
]
REVIEW_EXAMPLES = [
    "와! 진짜 화날 정도로 재밌네요",
    "처음엔 지루했는데 마지막 30분은 최고였다",
    "배우들 연기는 좋았지만 스토리가 엉망이라 시간이 아까웠다",
    "One of the best films I have seen in years: the acting is superb and the ending stayed with me.",
    "I wanted to like it, but the plot made no sense and I was bored after twenty minutes.",
    "The first hour is slow, yet the last act is wonderful.",
]


# The captioner learned from Flickr photos of people and dogs: examples of both what it knows and not.
IMAGE_KINDS = {
    "People, like its training photos: it sees a person, the details are often wrong": [
        "astronaut.jpg",
        "photographer.jpg",
    ],
    "Unlike its training photos (a cat, a cup): it is wrong, calling them people": ["cat.jpg", "coffee.jpg"],
}


def example_images() -> list[str]:
    return sorted(str(p) for p in EXAMPLES_DIR.glob("*.jpg"))


def example_images_by_kind() -> list[tuple[str, list[str]]]:
    """(label, image paths) for each group of `IMAGE_KINDS`."""
    return [(label, [str(EXAMPLES_DIR / name) for name in names]) for label, names in IMAGE_KINDS.items()]
