import io
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from seq2seq_app import LoadedCaptioner, load_captioner
from seq2seq_app.captioning.backbones import make_backbone
from seq2seq_app.captioning.captioner import Captioner
from seq2seq_app.captioning.shapes import make_shapes_dataset
from tests.image_cases import CORRUPT, GOOD, NOT_IMAGES, RECOVERABLE
from tests.layer_checks import check_config_round_trip, check_fit_and_save_load
from tests.plain_tf import run_with_tensorflow_alone


def _encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def _inputs(batch=2, regions=6, channels=5, length=4, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "features": rng.normal(size=(batch, regions, channels)).astype("float32"),
        "target_in": rng.integers(1, 20, (batch, length)).astype("int32"),
    }


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_captioner_shapes_and_attention_over_regions(cell):
    model = Captioner(20, num_regions=6, embedding_dim=8, units=12, cell=cell, decoder_layers=2)
    logits, attention = model(_inputs(), return_attention=True)
    assert logits.shape == (2, 4, 20) and attention.shape == (2, 4, 6)
    np.testing.assert_allclose(np.asarray(attention).sum(-1), 1.0, atol=1e-5)


def test_captioner_step_matches_teacher_forcing():
    model = Captioner(20, num_regions=6, embedding_dim=8, units=12)
    inputs = _inputs()
    full = np.asarray(model(inputs))
    state = model.encode(inputs["features"])
    for t in range(4):
        logits, _, state = model.decode_step(inputs["target_in"][:, t], state)
        np.testing.assert_allclose(np.asarray(logits), full[:, t], atol=1e-5)


@pytest.mark.slow  # a real fit and a save/load: seconds of CPU
def test_captioner_config_round_trip_and_fit_save_load(tmp_path):
    model = Captioner(20, num_regions=6, embedding_dim=8, units=12, dropout=0.1)
    inputs = _inputs()
    check_config_round_trip(model, inputs)
    check_fit_and_save_load(
        model,
        inputs,
        np.ones((2, 4), "int32"),
        tmp_path,
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )


def test_backbones_give_regions_and_unknown_names_fail():
    assert make_backbone("grid", None, 64).output_shape == (None, 64, 3)
    assert make_backbone("mobilenet_v2", None, 96).output_shape == (None, 9, 1280)
    with pytest.raises(ValueError, match="Unknown backbone"):
        make_backbone("vgg99", None)
    with pytest.raises(ValueError, match="divisible by 8"):
        make_backbone("grid", None, 60)


def test_mirrored_images_get_mirrored_captions():
    from seq2seq_app.captioning.data import mirror_captions

    assert mirror_captions(["a red circle left of a blue square", "a dog", "Right: bright"]) == [
        "a red circle right of a blue square",
        "a dog",
        "Left: bright",
    ]


@pytest.fixture(scope="module")
def module(caption_export):
    """The raw SavedModel, loaded once: a load and each signature's first call cost seconds."""
    return tf.saved_model.load(str(caption_export[0]))


def test_shapes_captioner_learned_to_look_at_the_image(caption_export):
    """A decoder that never saw the image could only ever write one caption."""
    card = caption_export[1]
    greedy = card["metrics"]["greedy"]
    assert greedy["distinct_captions"] >= 10
    # Always writing the likeliest caption scores about 25. The fixture's BLEU-4 on its 100 test
    # images moves with the CPU's arithmetic and the epoch count: 32–57 measured on AMD (AVX2)
    # and Intel (AVX-512, AMX) machines.
    assert greedy["bleu4"] >= 30.0
    assert card["export"]["signatures"] == "caption, caption_beam"


def test_caption_signature_contract(module):
    images = make_shapes_dataset(3, seed=7).images
    out = module.signatures["caption"](image=tf.constant(images))
    assert out["caption"].shape == (3,) and out["status"].numpy().tolist() == [b"ok"] * 3
    steps = out["tokens"].shape[1]
    assert out["attention"].shape == (3, steps, 64)
    real = out["tokens"].numpy() != b""
    sums = out["attention"].numpy().sum(-1)
    np.testing.assert_allclose(sums[real], 1.0, atol=1e-5)  # each written word's attention sums to 1
    for text in out["caption"].numpy():
        assert text and text[:1].isupper()


def test_greedy_equals_beam_of_one_and_beam_gives_n_best(module):
    images = tf.constant(make_shapes_dataset(4, seed=3).images)
    greedy = module.signatures["caption"](image=images)
    beam1 = module.signatures["caption_beam"](image=images, beam_size=tf.constant(1))
    assert greedy["caption"].numpy().tolist() == beam1["caption"].numpy().tolist()
    beam3 = module.signatures["caption_beam"](image=images, beam_size=tf.constant(3))
    assert beam3["candidates"].shape == (4, 3) and beam3["scores"].shape == (4, 3)
    assert np.all(np.diff(beam3["scores"].numpy(), axis=1) <= 1e-6)  # best first


def test_bad_images_give_a_caption_or_a_clear_error(caption_export, tmp_path):
    captioner = LoadedCaptioner(caption_export[0])
    good = [
        _encode(Image.new("RGB", (1, 1), (255, 0, 0))),
        _encode(Image.new("L", (50, 40), 90)),
        _encode(Image.new("RGBA", (50, 40), (0, 0, 255, 128))),
        _encode(Image.new("RGB", (6000, 6000), (200, 30, 30)), "JPEG"),
    ]
    assert all(isinstance(c, str) and c for c in captioner.caption(good))
    out = captioner.run([b"", b"%PDF-1.4 not an image", good[0]])
    assert out["status"].tolist() == [b"not an image", b"not an image", b"ok"]
    assert out["caption"][0] == b"" and np.all(out["attention"][0] == 0)
    with pytest.raises(ValueError, match="^image 1 is not an image$"):
        captioner.caption([good[0], b"hello"])
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff" + b"garbage" * 20)
    (tmp_path / "fine.png").write_bytes(good[0])
    with pytest.raises(ValueError, match=r"broken\.jpg is corrupt; image 2 is not an image"):
        captioner.caption([tmp_path / "fine.png", str(tmp_path / "broken.jpg"), b"text"])
    captioner.caption(good[3][:2000] + b"\x00garbage" * 50)  # a truncated JPEG gets what can be recovered
    assert captioner.run([])["caption"].shape == (0,)
    with pytest.raises(TypeError, match="bytes or file paths"):
        captioner.caption([123])
    with pytest.raises(FileNotFoundError, match="training.caption"):
        load_captioner("/nonexistent")


@pytest.mark.parametrize("signature", ["caption", "caption_beam"])
def test_one_bad_image_never_costs_the_batch_its_captions(module, signature):
    run = module.signatures[signature]
    options = {"beam_size": tf.constant(2)} if signature == "caption_beam" else {}
    alone = run(image=tf.constant([GOOD]), **options)
    cases = {**CORRUPT, **NOT_IMAGES, **RECOVERABLE}
    for name, data in cases.items():
        out = run(image=tf.constant([GOOD, data]), **options)
        expected = "corrupt" if name in CORRUPT else "not an image" if name in NOT_IMAGES else "ok"
        assert out["status"].numpy().tolist() == [b"ok", expected.encode()], name
        assert out["caption"][0].numpy() == alone["caption"][0].numpy(), name
        assert bool(out["caption"][1].numpy()) == (expected == "ok"), name
        if signature == "caption_beam":
            assert out["candidates"][0].numpy().tolist() == alone["candidates"][0].numpy().tolist()


def test_export_matches_the_keras_models(caption_export, module):
    from seq2seq_app.captioning.captioner_export import CaptionerExport
    from seq2seq_app.core.vocabulary import Vocabulary

    export_dir, card = caption_export
    run_dir = export_dir.parent / "run"
    hp = card["hyperparameters"]
    vocab = Vocabulary.load(run_dir / "vocab.txt")
    backbone = make_backbone("grid", None, 64)
    model = Captioner(len(vocab), 64, hp["embedding_dim"], hp["units"], hp["cell"])
    model({"features": np.zeros((1, 64, 3), "float32"), "target_in": np.ones((1, 2), "int32")})
    model.load_weights(run_dir / "final.weights.h5")
    exporter = CaptionerExport(backbone, model, vocab, 64, hp["max_length"])
    images = tf.constant(make_shapes_dataset(3, seed=11).images)
    loaded = module.signatures["caption"](image=images)
    in_memory = exporter.caption(images)
    assert in_memory["caption"].numpy().tolist() == loaded["caption"].numpy().tolist()
    np.testing.assert_allclose(in_memory["attention"].numpy(), loaded["attention"].numpy(), atol=1e-5)


PLAIN_TF_SCRIPT = r"""
import numpy as np
m = tf.saved_model.load(sys.argv[1])
png = tf.io.encode_png(tf.constant(np.full((40, 60, 3), 200, np.uint8)))
out = m.signatures["caption"](image=tf.stack([png, tf.constant(b"not an image")]))
beam = m.signatures["caption_beam"](image=tf.reshape(png, [1]), beam_size=tf.constant(2))
assert beam["candidates"].shape == (1, 2)
print(out["status"].numpy()[1].decode())
"""


def test_saved_model_runs_with_tensorflow_alone(caption_export, tmp_path):
    assert run_with_tensorflow_alone(PLAIN_TF_SCRIPT, caption_export[0], tmp_path).strip() == "not an image"


def test_model_card_records_data_backbone_and_command(caption_export):
    export_dir, card = caption_export
    assert json.loads((export_dir / "model_card.json").read_text()) == card
    assert card["task"] == "caption" and card["backbone"]["name"] == "grid"
    assert card["data"]["train_images"] == 800
    assert card["training"]["command"].startswith("python -m ")
