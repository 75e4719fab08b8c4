"""The app's named endpoints, called over HTTP with gradio_client as an API user would."""

import contextlib
import os
import threading
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from PIL import Image
from ui_server import running_app


@pytest.fixture(scope="module")
def client(tmp_path_factory, trained_export, sentiment_export, caption_export):
    models_dir = tmp_path_factory.mktemp("models")
    for folder, export in [
        ("translate_spa_en", trained_export),
        ("sentiment_nsmc", sentiment_export),
        ("caption_flickr8k", caption_export),
    ]:
        (models_dir / folder).symlink_to(export[0], target_is_directory=True)
    with running_app(models_dir) as url:  # sentiment_imdb is deliberately missing
        assert url.startswith("http://127.0.0.1:")
        yield Client(url, verbose=False)


@pytest.fixture(scope="module")
def shape_image(tmp_path_factory):
    from seq2seq_app.captioning.shapes import make_shapes_dataset

    path = tmp_path_factory.mktemp("images") / "shapes.png"
    path.write_bytes(make_shapes_dataset(1, seed=3).images[0])
    return path


def test_named_endpoints_are_listed(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/translate", "/classify", "/caption"} <= names


def test_translate_endpoint(client):
    text, nbest, heatmap = client.predict("El gato come pan .", "beam", 3, 0.6, 0.7, api_name="/translate")
    # The toy model's translation may be empty; the contract is the shape of the answer.
    assert isinstance(text, str) and nbest["data"][0][1] == text and len(nbest["data"]) <= 3
    assert "attention-heatmap" in heatmap
    text, nbest, _ = client.predict("Tom bebe agua .", "greedy", 3, 0.6, 0.7, api_name="/translate")
    assert isinstance(text, str) and nbest["data"] in ([], [["", ""]])


def test_classify_endpoint(client):
    verdict, moves, trajectory = client.predict("이번 영화 최고", "auto", api_name="/classify")
    assert verdict.startswith(("positive", "negative")) and "token-move" in moves
    assert [row[1] for row in trajectory["data"]] == ["이", "번", "영", "화", "최", "고"]


def test_caption_endpoint(client, shape_image):
    caption, overlays = client.predict(handle_file(str(shape_image)), "greedy", 3, api_name="/caption")
    words = len(caption.rstrip(".").split()) + caption.endswith(".")
    assert caption and overlays.count('class="attention-word"') == words


@pytest.mark.parametrize(
    "endpoint, args, message",
    [
        ("/translate", ("", "greedy", 3, 0.6, 0.7), "Type a sentence"),
        ("/translate", ("x" * 2001, "greedy", 3, 0.6, 0.7), "limit is 2000"),
        ("/classify", ("   ", "auto"), "Type a review"),
        ("/classify", ("a great film", "auto"), "IMDB.*not installed"),
        ("/classify", ("좋다", "nonsense"), "not in the list of choices"),
    ],
)
def test_bad_text_is_a_clear_error_and_the_app_keeps_serving(client, endpoint, args, message):
    with pytest.raises(Exception, match=message):
        client.predict(*args, api_name=endpoint)
    assert (
        "attention-heatmap"
        in client.predict("Tom bebe agua .", "greedy", 3, 0.6, 0.7, api_name="/translate")[2]
    )


def test_bad_files_are_a_clear_error_and_the_app_keeps_serving(client, tmp_path, shape_image):
    text_file = tmp_path / "notes.png"
    text_file.write_text("not an image at all")
    with pytest.raises(Exception, match="not an image"):
        client.predict(handle_file(str(text_file)), "greedy", 3, api_name="/caption")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00garbage" * 100)
    with pytest.raises(Exception, match="not a readable image|not an image"):
        client.predict(handle_file(str(broken)), "greedy", 3, api_name="/caption")
    bomb = tmp_path / "bomb.png"  # 64 megapixels in a small file: refused from its header
    Image.new("L", (8000, 8000)).save(bomb, optimize=False)
    assert bomb.stat().st_size < 1024 * 1024
    with pytest.raises(Exception, match="too large"):
        client.predict(handle_file(str(bomb)), "greedy", 3, api_name="/caption")
    huge = tmp_path / "huge.png"
    huge.write_bytes(shape_image.read_bytes() + b"\x00" * (11 * 1024 * 1024))
    with pytest.raises(ValueError, match="exceeds the maximum file size"):  # the client reads the app's cap
        client.predict(handle_file(str(huge)), "greedy", 3, api_name="/caption")
    import httpx  # and the server enforces it for clients that do not

    refused = httpx.post(
        f"{client.src.rstrip('/')}/gradio_api/upload", files={"files": ("huge.png", huge.read_bytes())}
    )
    assert refused.status_code == 413 and "maximum allowed size" in refused.text
    assert client.predict(handle_file(str(shape_image)), "greedy", 3, api_name="/caption")[0]


def test_python_m_ui_is_local_and_private_by_default(monkeypatch, tmp_path):
    import ui.__main__ as entry
    import ui.app
    import ui.catalog
    import ui.handlers

    launched = {}

    class Demo:
        def block_thread(self):
            launched["blocked"] = 1

    def serve(demo, host, port, share, **options):
        launched.update(host=host, share=share)
        return None, f"http://{host}:{port}/", None

    monkeypatch.setattr(ui.app, "serve", serve)
    monkeypatch.setattr(ui.app, "build_demo", lambda models: Demo())
    monkeypatch.setattr(
        ui.catalog, "load_models", lambda models_dir: launched.update(models=models_dir) or {}
    )
    warmed = threading.Event()

    def warm_up(models):
        # In the background, after the server is up: the page does not wait for the tracing.
        launched["warmed after serving"] = "host" in launched and threading.current_thread().name == "warm-up"
        warmed.set()

    monkeypatch.setattr(ui.handlers, "warm_up", warm_up)
    monkeypatch.chdir(tmp_path)  # no ./saved_models here: the checkout's shipped folder is the default
    entry.main([])
    assert warmed.wait(10) and launched.pop("warmed after serving")
    assert launched.pop("models") == entry.default_models_dir()
    assert os.path.samefile(entry.default_models_dir(), Path(entry.__file__).parents[1] / "saved_models")
    assert launched == {"host": "127.0.0.1", "share": False, "blocked": 1}
    warmed.clear()
    entry.main(["--models-dir", str(tmp_path), "--host", "0.0.0.0", "--share"])
    assert warmed.wait(10) and launched.pop("warmed after serving")
    assert launched == {"host": "0.0.0.0", "share": True, "models": str(tmp_path), "blocked": 1}


def test_load_script_reports_each_endpoint(client):
    from ui import load

    reports = []
    # 2 clients × 1 request send the first two examples of each kind (both reviews Korean: no IMDB
    # model here).
    results = load.run(
        client.src, load.ENDPOINTS, clients=2, requests=1, report=reports.append, user_kinds=list(load.USERS)
    )
    assert results == reports
    assert [(r["client"], r["endpoint"]) for r in results] == [
        (kind, f"/{e}") for kind in load.USERS for e in ("translate", "classify", "caption")
    ]
    for r in results:
        assert (r["ok"], r["errors"]) == (2, 0), r["first_errors"]
        assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["max_ms"]


def test_plain_http_user_reports_the_apps_error_message(client):
    from ui import load

    with contextlib.ExitStack() as stack:
        call = load.http_user(client.src, stack)
        assert "token-move" in call("classify", load._arguments("classify", 0))[1]  # a Korean review
        with pytest.raises(RuntimeError, match="answered with an error: The English .*IMDB.* not installed"):
            call("classify", load._arguments("classify", 3))  # an English review, and no IMDB model here


def test_soak_refuses_every_bad_input_and_samples_the_servers_memory(client):
    from ui import load

    reports = []
    result = load.soak(
        client.src,
        0.1,
        clients=2,
        server_pid=os.getpid(),
        warm_up_minutes=0,
        sample_seconds=0.5,
        report=reports.append,
    )
    assert result["requests"] >= 10 and result["refused_as_expected"] >= 1
    assert result["requests"] == result["ok"] + result["refused_as_expected"] + result["errors"]
    # The only failures allowed: English reviews, whose IMDB model is deliberately missing here.
    assert all("IMDB" in e and "not installed" in e for e in result["first_errors"]), result["first_errors"]
    assert 0 < result["rss_mb_after_warm_up"] <= result["rss_mb_max"]
