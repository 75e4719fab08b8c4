"""Property-based tests of every exported signature: any text, any bytes, batches of 0–64.

For each signature: never an exception, shapes as the contract says, finite numbers, greedy
outputs deterministic, and an item's result the same alone as in a batch. The models are the
tiny ones the session fixtures train (so these tests are slow by fixture).
"""

import io

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.image_cases import CORRUPT, GOOD, JPEG, PROGRESSIVE, RECOVERABLE, encode

PROPERTY = settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Text a user might send, and text nobody should: control characters, right-to-left marks,
# combining marks, invalid UTF-8 bytes (lone surrogates encoded as bytes), and very long input.
ODD = [
    "\u202eabc\u202c",
    "\u200f\u05e9\u05dc\u05d5\u05dd",
    "e\u0301\u0301\u0301",
    "\x00\x07\x1b[31m",
    "\ufeff",
    "\U0001f600" * 3,
]
TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(ODD),
    st.binary(max_size=40),  # not UTF-8 at all
    st.just(b"\xed\xa0\x80 lone surrogate"),
)
LONG = "El gato come pan . " * 5_300  # about 100,000 characters


def _shapes_image(colour):
    return encode(Image.new("RGB", (40, 30), colour))


def _gif():
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), (0, 90, 200)).save(buffer, "GIF")
    return buffer.getvalue()


IMAGES = [
    GOOD,
    JPEG,
    PROGRESSIVE,
    _shapes_image((0, 200, 0)),
    _gif(),
    encode(Image.new("RGB", (9, 9)), "BMP"),
]


@st.composite
def damaged(draw):
    """A real image cut short or with a stretch of its bytes overwritten."""
    image = draw(st.sampled_from(IMAGES))
    cut = draw(st.integers(0, len(image)))
    start = draw(st.integers(0, len(image)))
    noise = draw(st.binary(max_size=64))
    return draw(st.sampled_from([image[:cut], image[:start] + noise + image[start + len(noise) :]]))


IMAGE_BYTES = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(IMAGES),
    st.sampled_from(list(CORRUPT.values()) + list(RECOVERABLE.values())),
    damaged(),
)


def batches(items, max_size=64):
    return st.lists(items, min_size=0, max_size=max_size)


def _numpy(outputs):
    return {k: v.numpy() for k, v in outputs.items()}


def _strings(batch):
    return tf.constant(batch, tf.string)


@pytest.fixture(scope="module")
def translator(trained_export):
    return tf.saved_model.load(str(trained_export[0])).signatures


@pytest.fixture(scope="module")
def classifier(sentiment_export):
    return tf.saved_model.load(str(sentiment_export[0])).signatures


@pytest.fixture(scope="module")
def captioner(caption_export):
    return tf.saved_model.load(str(caption_export[0])).signatures


def _check_translation(out, b, beams=None):
    t, s = out["target_tokens"].shape[1], out["source_tokens"].shape[1]
    assert out["translation"].shape == (b,) and out["attention"].shape == (b, t, s)
    assert out["source_tokens"].shape == (b, s)
    assert np.all(np.isfinite(out["attention"]))
    if beams is not None:
        assert out["candidates"].shape == (b, beams) and out["scores"].shape == (b, beams)
        assert np.all(np.isfinite(out["scores"]))


@PROPERTY
@given(batch=batches(TEXT))
@example(batch=[LONG, "", LONG[:1000]])
def test_translate_any_text(translator, batch):
    out = _numpy(translator["translate"](text=_strings(batch)))
    _check_translation(out, len(batch))
    again = _numpy(translator["translate"](text=_strings(batch)))
    assert out["translation"].tolist() == again["translation"].tolist()


@PROPERTY
@given(batch=batches(TEXT, 6), beam=st.integers(-2, 20))
def test_translate_beam_any_text_and_beam_size(translator, batch, beam):
    run = translator["translate_beam"]
    out = _numpy(run(text=_strings(batch), beam_size=tf.constant(beam), length_penalty=tf.constant(0.6)))
    _check_translation(out, len(batch), beams=min(max(beam, 1), 16))
    for i, item in enumerate(batch):
        alone = run(text=_strings([item]), beam_size=tf.constant(beam), length_penalty=tf.constant(0.6))
        assert alone["translation"].numpy()[0] == out["translation"][i]
        np.testing.assert_allclose(alone["scores"].numpy()[0], out["scores"][i], rtol=1e-4, atol=1e-4)


@PROPERTY
@given(batch=batches(TEXT, 8), temperature=st.floats(-1.0, 3.0))
def test_translate_sample_any_text_and_temperature(translator, batch, temperature):
    out = _numpy(translator["translate_sample"](text=_strings(batch), temperature=tf.constant(temperature)))
    _check_translation(out, len(batch))
    if temperature <= 0:  # greedy
        greedy = translator["translate"](text=_strings(batch))["translation"].numpy()
        assert out["translation"].tolist() == greedy.tolist()


@PROPERTY
@given(batch=batches(TEXT, 8))
def test_translate_batch_equals_each_item_alone(translator, batch):
    out = _numpy(translator["translate"](text=_strings(batch)))
    for i, item in enumerate(batch):
        alone = _numpy(translator["translate"](text=_strings([item])))
        assert alone["translation"][0] == out["translation"][i]
        t = alone["attention"].shape[1]
        np.testing.assert_allclose(
            alone["attention"][0], out["attention"][i, :t, : alone["attention"].shape[2]], atol=1e-5
        )


@PROPERTY
@given(batch=batches(TEXT))
@example(batch=[LONG, ""])
def test_classify_any_text(classifier, batch):
    out = _numpy(classifier["classify"](text=_strings(batch)))
    b, n = len(batch), out["tokens"].shape[1]
    assert out["score"].shape == (b,) and out["label"].shape == (b,) and out["token_scores"].shape == (b, n)
    assert np.all(np.isfinite(out["score"])) and np.all((out["score"] >= 0) & (out["score"] <= 1))
    assert set(out["label"].tolist()) <= {b"positive", b"negative", b"empty"}
    for i, item in enumerate(batch[:8]):
        alone = _numpy(classifier["classify"](text=_strings([item])))
        np.testing.assert_allclose(alone["score"][0], out["score"][i], atol=1e-5)
        assert alone["tokens"][0].tolist() == out["tokens"][i, : alone["tokens"].shape[1]].tolist()


def _check_captions(out, b, beams=None):
    t = out["tokens"].shape[1]
    assert out["caption"].shape == (b,) and out["status"].shape == (b,) and out["tokens"].shape == (b, t)
    assert out["attention"].shape[:2] == (b, t) and np.all(np.isfinite(out["attention"]))
    statuses = {b"ok", b"not an image", b"corrupt", b"too large", b"unsupported"}
    assert set(out["status"].tolist()) <= statuses
    for caption, status in zip(out["caption"], out["status"]):
        assert (caption != b"") == (status == b"ok")
    if beams is not None:
        assert out["candidates"].shape == (b, beams) and out["scores"].shape == (b, beams)
        assert np.all(np.isfinite(out["scores"]))


@PROPERTY
@given(batch=batches(IMAGE_BYTES, 12))
def test_caption_any_bytes(captioner, batch):
    out = _numpy(captioner["caption"](image=_strings(batch)))
    _check_captions(out, len(batch))
    for i, item in enumerate(batch):
        alone = _numpy(captioner["caption"](image=_strings([item])))
        assert (alone["caption"][0], alone["status"][0]) == (out["caption"][i], out["status"][i])


@PROPERTY
@given(batch=batches(IMAGE_BYTES, 6), beam=st.integers(-2, 20))
def test_caption_beam_any_bytes(captioner, batch, beam):
    run = captioner["caption_beam"]
    out = _numpy(run(image=_strings(batch), beam_size=tf.constant(beam)))
    _check_captions(out, len(batch), beams=min(max(beam, 1), 16))
    for i, item in enumerate(batch):
        alone = _numpy(run(image=_strings([item]), beam_size=tf.constant(beam)))
        assert alone["caption"][0] == out["caption"][i]


@pytest.mark.parametrize("size", [0, 1, 64])
def test_every_signature_takes_batches_of_zero_to_sixty_four(translator, classifier, captioner, size):
    texts, images = _strings(["Tom ve el gato ."] * size), _strings([GOOD] * size)
    _check_translation(_numpy(translator["translate"](text=texts)), size)
    beam = translator["translate_beam"](text=texts, beam_size=tf.constant(2), length_penalty=tf.constant(0.6))
    _check_translation(_numpy(beam), size, beams=2)
    _check_translation(_numpy(translator["translate_sample"](text=texts, temperature=tf.constant(1.0))), size)
    assert classifier["classify"](text=texts)["score"].shape == (size,)
    _check_captions(_numpy(captioner["caption"](image=images)), size)
    _check_captions(_numpy(captioner["caption_beam"](image=images, beam_size=tf.constant(3))), size, beams=3)
