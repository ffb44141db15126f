"""examples/digits_app.py: the MNIST preprocessing, the HTTP API and the page in a real browser.

Every test runs under a SIGALRM deadline (pytest-timeout is not a dependency), and every
socket and subprocess has its own timeout, so a hang fails instead of stalling the suite.
The browser test needs Chromium, chromedriver and selenium (the `browser` extra) and skips
without them; set DIGITS_APP_SCREENSHOT=PATH to save a screenshot of the page with a digit.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import tinygrad_mlp as tm

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
MNIST_DIR = ROOT.parent / "shared" / "datasets" / "mnist"
HAVE_MNIST = all((MNIST_DIR / name).is_file() for name in tm.datasets.MNIST_FILES)
needs_mnist = pytest.mark.skipif(not HAVE_MNIST, reason=f"the MNIST files are not in {MNIST_DIR}")


def _import_app():
    """Import examples/digits_app.py without leaving _common's BLAS setting in os.environ."""
    before = dict(os.environ)
    sys.path.insert(0, str(EXAMPLES))
    try:
        import digits_app
    finally:
        sys.path.remove(str(EXAMPLES))
        for key in set(os.environ) - set(before):
            del os.environ[key]
    return digits_app


app = _import_app()


@contextlib.contextmanager
def deadline(seconds: int):
    """Raise TimeoutError in the main thread when the block runs longer than ``seconds``."""

    def expire(signum, frame):
        raise TimeoutError(f"timed out after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def longer_deadline(seconds: int):
    """Give one test ``seconds`` instead of the usual 60."""

    def mark(test):
        test.deadline_seconds = seconds
        return test

    return mark


@pytest.fixture(autouse=True)
def _deadline(request):
    with deadline(getattr(request.function, "deadline_seconds", 60)):
        yield


# ---------------------------------------------------------------- data, model, server


@pytest.fixture(scope="module")
def mnist():
    if not HAVE_MNIST:
        pytest.skip(f"the MNIST files are not in {MNIST_DIR}")
    with deadline(60):
        return app.load_mnist(str(MNIST_DIR))


@pytest.fixture(scope="module")
def classifier(mnist):
    """A small model, quick to train (784-128-10, 2 augmented epochs of 30,000 images: 96%)."""
    x_train, y_train, _, _ = mnist
    with deadline(300):  # about 8 s on two idle cores; the deadline only catches a hang
        model = app.train_model(x_train[:30000], y_train[:30000], (784, 128, 10), epochs=2)
    return app.DigitClassifier(model)


@pytest.fixture(scope="module")
def model_file(classifier, tmp_path_factory):
    path = tmp_path_factory.mktemp("digits") / "model.npz"
    tm.save(classifier.model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def server(classifier):
    """(host, port) of the app serving in a thread on a free port of 127.0.0.1."""
    srv = app.make_server(classifier, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv.server_address[:2]
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=10)


def request(address, method, path, body=None, headers=None, conn=None):
    """(status, parsed JSON or raw bytes, headers) of one request over a real socket."""
    own = conn is None
    conn = conn or http.client.HTTPConnection(*address, timeout=10)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        if response.getheader("Content-Type", "").startswith("application/json"):
            data = json.loads(data)
        return response.status, data, response
    finally:
        if own:
            conn.close()


def enlarge(image: np.ndarray, k: int, top: int, left: int, size: int = 280) -> np.ndarray:
    """A 28x28 image scaled k times (nearest neighbour) at (top, left) on a size x size canvas."""
    canvas = np.zeros((size, size))
    big = np.kron(image, np.ones((k, k)))
    canvas[top : top + big.shape[0], left : left + big.shape[1]] = big
    return canvas


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    idx = np.arange(image.shape[0])
    mass = image.sum()
    return (image.sum(axis=1) @ idx) / mass, (image.sum(axis=0) @ idx) / mass


def bounding_box(image: np.ndarray) -> tuple[int, int]:
    rows, cols = np.flatnonzero(image.max(axis=1) > 0), np.flatnonzero(image.max(axis=0) > 0)
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


# ---------------------------------------------------------------- preprocessing


def test_one_pixel_fills_the_20x20_box_placed_by_its_centre():
    canvas = np.zeros((280, 280))
    canvas[100, 37] = 1
    out = app.mnist_preprocess(canvas)
    # the box's centre of mass is (9.5, 9.5): offset floor(14 - 9.5 + 0.5) = 5 on both axes
    expected = np.zeros((28, 28))
    expected[5:25, 5:25] = 1
    np.testing.assert_array_equal(out, expected)
    assert out.shape == (28, 28) and out.dtype == np.float32


def test_a_tall_bar_keeps_its_aspect_ratio_with_area_averaged_edges():
    canvas = np.zeros((100, 60))
    canvas[30:70, 20:30] = 1  # 40 tall, 10 wide
    out = app.mnist_preprocess(canvas)
    # padded to 40x40 with the bar in columns 15..24, halved: columns 7.5..12.5 of the box
    # (7 and 12 half covered), then moved by 5 so the centre of mass (9.5, 9.5) is at 14.5
    expected = np.zeros((28, 28))
    expected[5:25, 13:17] = 1
    expected[5:25, [12, 17]] = 0.5
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_a_wide_block_is_centred_vertically_and_faint_ink_is_brightened():
    canvas = np.zeros((50, 50))
    canvas[10:20, 5:25] = 0.5  # 10 tall, 20 wide: no resize, only padding to 20x20
    out = app.mnist_preprocess(canvas)
    expected = np.zeros((28, 28))
    expected[10:20, 5:25] = 1  # the box's rows 5..14 moved down by 5; brightest pixel -> 1
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_resize_area_keeps_the_mean_and_averages_boxes():
    rng = np.random.default_rng(0)
    image = rng.random((57, 83))
    for shape in [(20, 20), (28, 11), (100, 120)]:
        out = app.resize_area(image, *shape)
        assert out.shape == shape
        np.testing.assert_allclose(out.mean(), image.mean(), rtol=1e-12)
    blocks = np.arange(16.0).reshape(4, 4)
    np.testing.assert_allclose(app.resize_area(blocks, 2, 2), [[2.5, 4.5], [10.5, 12.5]])


def test_blank_or_badly_shaped_canvases_are_refused():
    with pytest.raises(ValueError, match="blank"):
        app.mnist_preprocess(np.zeros((280, 280)))
    with pytest.raises(ValueError, match="2-D"):
        app.mnist_preprocess(np.ones((2, 2, 2)))


@needs_mnist
def test_a_large_off_centre_digit_lands_where_mnist_puts_it(mnist):
    _, _, x_test, _ = mnist
    for i in range(20):
        original = x_test[i]
        canvas = enlarge(original, 7, top=5 + 3 * i, left=80 - 4 * i)  # large and off-centre
        out = app.mnist_preprocess(canvas)
        h, w = bounding_box(out)
        assert h <= 20 and w <= 20 and max(h, w) >= 19
        cy, cx = centre_of_mass(out)
        assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5, (i, cy, cx)
        # and it looks like the MNIST digit it was made from
        assert np.corrcoef(out.ravel(), original.ravel())[0, 1] > 0.8, i


@needs_mnist
@pytest.mark.slow
def test_accuracy_on_enlarged_shifted_canvases_matches_the_originals(mnist, classifier):
    _, _, x_test, y_test = mnist
    rng = np.random.default_rng(0)
    images, labels = x_test[:1000], y_test[:1000]
    prepared = []
    for image in images:
        k = int(rng.integers(5, 11))
        top, left = rng.integers(0, 280 - 28 * k + 1, size=2)
        prepared.append(app.mnist_preprocess(enlarge(image, k, top, left)))
    original = app.accuracy(classifier, images, labels)
    enlarged = app.accuracy(classifier, np.array(prepared), labels)
    print(f"accuracy on 1000 test digits: originals {original:.1%}, enlarged {enlarged:.1%}")
    assert enlarged >= 0.93
    assert abs(enlarged - original) <= 0.02


# ---------------------------------------------------------------- the model file


@needs_mnist
def test_a_saved_model_loads_back_with_its_shape(classifier, model_file, mnist):
    _, _, x_test, _ = mnist
    loaded = app.DigitClassifier(app.model_from_state_dict(tm.load(model_file)))
    np.testing.assert_allclose(
        loaded.probabilities(x_test[:50]), classifier.probabilities(x_test[:50]), atol=1e-6
    )
    with pytest.raises(ValueError, match="784"):
        app.model_from_state_dict(app.build_model((100, 10)).state_dict())


# ---------------------------------------------------------------- the HTTP API


@needs_mnist
def test_the_page_and_its_files_are_served(server):
    status, page, response = request(server, "GET", "/")
    assert status == 200 and response.getheader("Content-Type").startswith("text/html")
    for needle in (b'<canvas id="pad"', b'id="clear"', b'id="prediction"', b"/app.js"):
        assert needle in page
    status, script, response = request(server, "GET", "/app.js")
    assert status == 200 and "javascript" in response.getheader("Content-Type")
    assert b"setPointerCapture" in script and b"pointerdown" in script
    assert b"/ 14" in script  # the pen is 1/14 of the canvas wide
    status, css, _ = request(server, "GET", "/style.css")
    assert status == 200 and b"touch-action: none" in css
    assert b"http://" not in page + script + css and b"https://" not in page + script + css


@needs_mnist
def test_predict_answers_for_pixels_and_canvases(server, classifier, mnist):
    _, _, x_test, y_test = mnist
    for i in range(10):
        status, answer, _ = request(
            server, "POST", "/predict", {"pixels": x_test[i].ravel().tolist()}
        )
        assert status == 200, answer
        assert answer["digit"] == classifier.predict(x_test[i])[0]
        assert len(answer["probabilities"]) == 10
        assert abs(sum(answer["probabilities"]) - 1) < 1e-5
        assert answer["digit"] == int(np.argmax(answer["probabilities"]))
    canvas = enlarge(x_test[0], 6, 40, 30, size=250)[:, :240]  # a 240 wide, 250 tall drawing
    body = {"canvas": canvas.ravel().tolist(), "width": 240, "height": 250}
    status, answer, _ = request(server, "POST", "/predict", body)
    assert status == 200 and answer["digit"] == y_test[0] == 7


def pixels_with(value) -> bytes:
    return ('{"pixels": [' + ", ".join(["0"] * 783 + [value]) + "]}").encode()


def canvas_body(width, height, n=None, value=0.5) -> dict:
    n = width * height if n is None else n
    return {"canvas": [value] * n, "width": width, "height": height}


BAD_BODIES = {
    "not json": (b"this is not json", "not valid JSON"),
    "not utf-8": (b'{"pixels": "\xff"}', "not valid JSON"),
    "a list": (b"[1, 2, 3]", "JSON object"),
    "no image": (b'{"digits": []}', "'pixels'"),
    "pixels not a list": (b'{"pixels": "0.5"}', "list of numbers"),
    "783 pixels": (json.dumps({"pixels": [0] * 783}).encode(), "784 numbers, got 783"),
    "785 pixels": (json.dumps({"pixels": [0] * 785}).encode(), "784 numbers, got 785"),
    "a string": (pixels_with('"0.5"'), "only numbers"),
    "a bool": (pixels_with("true"), "only numbers"),
    "null": (pixels_with("null"), "only numbers"),
    "NaN": (pixels_with("NaN"), "NaN is not allowed"),
    "Infinity": (pixels_with("-Infinity"), "-Infinity is not allowed"),
    "1e999": (pixels_with("1e999"), "finite"),
    "above 1": (pixels_with("1.5"), "0..1"),
    "below 0": (pixels_with("-0.25"), "0..1"),
    "negative width": (json.dumps(canvas_body(-5, 10, n=50)).encode(), "'width' must be"),
    "huge height": (json.dumps(canvas_body(10, 10**9, n=10)).encode(), "'height' must be"),
    "float width": (json.dumps(canvas_body(2.5, 4, n=10)).encode(), "'width' must be"),
    "no height": (b'{"canvas": [1, 1], "width": 2}', "'height' must be"),
    "wrong length": (json.dumps(canvas_body(10, 10, n=99)).encode(), "100 numbers, got 99"),
    "canvas above 1": (json.dumps(canvas_body(4, 4, value=2)).encode(), "0..1"),
    "blank canvas": (json.dumps(canvas_body(8, 8, value=0)).encode(), "blank"),
}


@needs_mnist
@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_bodies_are_refused_with_400_and_a_reason(server, case):
    body, reason = BAD_BODIES[case]
    status, answer, response = request(server, "POST", "/predict", body)
    assert status == 400
    assert response.getheader("Content-Type") == "application/json"
    assert reason in answer["error"], answer


@needs_mnist
@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/nope", 404),
        ("POST", "/predict/", 404),
        ("GET", "/../README.md", 404),
        ("GET", "/predict", 405),
        ("POST", "/", 405),
        ("PUT", "/predict", 405),
        ("DELETE", "/", 405),
        ("PATCH", "/app.js", 405),
    ],
)
def test_unknown_paths_and_wrong_methods(server, method, path, status):
    code, answer, response = request(server, method, path, body=b"{}")
    assert code == status and "error" in answer
    if status == 405:
        assert response.getheader("Allow")


@needs_mnist
def test_head_answers_carry_no_body(server):
    conn = http.client.HTTPConnection(*server, timeout=10)
    try:
        for path, status in [("/", 200), ("/predict", 405), ("/nope", 404)]:
            conn.request("HEAD", path)
            response = conn.getresponse()
            assert response.status == status and response.read() == b""
        assert request(server, "GET", "/style.css", conn=conn)[0] == 200  # still in step
    finally:
        conn.close()


@needs_mnist
def test_an_oversized_body_is_refused_from_its_length_alone(server):
    conn = http.client.HTTPConnection(*server, timeout=10)
    try:
        conn.putrequest("POST", "/predict")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(4 * 1024 * 1024 + 1))
        conn.endheaders()  # the body is never sent: the answer comes from the header
        response = conn.getresponse()
        assert response.status == 413
        assert "limit" in json.loads(response.read())["error"]
    finally:
        conn.close()
    conn = http.client.HTTPConnection(*server, timeout=10)
    try:
        conn.putrequest("POST", "/predict")
        conn.endheaders()  # no Content-Length at all
        response = conn.getresponse()
        assert response.status == 411 and "Content-Length" in json.loads(response.read())["error"]
    finally:
        conn.close()


@needs_mnist
def test_the_server_keeps_serving_after_refusals_on_the_same_connection(server, mnist):
    _, _, x_test, y_test = mnist
    conn = http.client.HTTPConnection(*server, timeout=10)
    try:
        for body, _ in BAD_BODIES.values():
            assert request(server, "POST", "/predict", body, conn=conn)[0] == 400
        assert request(server, "GET", "/nothing", conn=conn)[0] == 404
        status, answer, _ = request(
            server, "POST", "/predict", {"pixels": x_test[1].ravel().tolist()}, conn=conn
        )
        assert status == 200 and answer["digit"] == y_test[1]
    finally:
        conn.close()


@needs_mnist
@pytest.mark.slow
def test_16_concurrent_clients_of_50_requests_all_get_correct_answers(server, classifier, mnist):
    _, _, x_test, _ = mnist
    images = x_test[:200]
    expected = classifier.probabilities(images).argmax(axis=1)
    bodies = [json.dumps({"pixels": image.ravel().tolist()}).encode() for image in images]
    start = threading.Barrier(16, timeout=10)

    def client(c: int) -> list[tuple[int, int, int]]:
        conn = http.client.HTTPConnection(*server, timeout=20)
        out = []
        try:
            start.wait()
            for r in range(50):
                i = (c * 50 + r) % len(images)
                status, answer, _ = request(server, "POST", "/predict", bodies[i], conn=conn)
                out.append((status, answer["digit"], int(expected[i])))
        finally:
            conn.close()
        return out

    with ThreadPoolExecutor(16) as pool:
        results = [row for rows in pool.map(client, range(16), timeout=50) for row in rows]
    assert len(results) == 800
    assert all(status == 200 and got == want for status, got, want in results)


@needs_mnist
@pytest.mark.slow
def test_the_load_benchmark_runs_and_checks_every_answer(model_file):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "digits_load.py"), "--model", str(model_file)]
        + ["--clients", "3", "--requests", "4", "--startup-timeout", "60"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "12 requests in" in proc.stdout and "0 failed or wrong" in proc.stdout
    assert "p99 ms" in proc.stdout


# ---------------------------------------------------------------- the command line


def start_app(*args: str, timeout: float = 120) -> tuple[subprocess.Popen, str, str]:
    """Start the app in a subprocess; return it, its URL and what it printed before."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "digits_app.py"), "--host", "127.0.0.1", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if "http://" in line:
                found.set()
        found.set()

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(timeout) or not any("http://" in line for line in lines):
        proc.kill()
        proc.wait(10)
        raise AssertionError("the app printed no URL:\n" + "".join(lines))
    url = next(line for line in lines if "http://" in line).split("http://")[1].split("/")[0]
    return proc, url, "".join(lines)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def test_help():
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "digits_app.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    for option in ("--port", "--host", "--data-dir", "--model"):
        assert option in proc.stdout


@needs_mnist
def test_the_app_serves_a_saved_model(model_file, mnist):
    _, _, x_test, _ = mnist
    proc, address, printed = start_app("--port", "0", "--model", str(model_file), timeout=60)
    try:
        assert f"model loaded from {model_file}" in printed
        host, port = address.rsplit(":", 1)
        assert request((host, int(port)), "GET", "/")[0] == 200
        body = {"pixels": x_test[0].ravel().tolist()}
        assert request((host, int(port)), "POST", "/predict", body)[1]["digit"] == 7
    finally:
        stop(proc)


@needs_mnist
@pytest.mark.slow
@longer_deadline(300)
def test_the_app_trains_and_saves_a_model_when_there_is_none(tmp_path):
    path = tmp_path / "new" / "model.npz"
    args = ("--port", "0", "--model", str(path), "--epochs", "1", "--data-dir", str(MNIST_DIR))
    # an epoch of training comes first: 25 s alone, minutes on a loaded machine
    proc, address, printed = start_app(*args, timeout=600)
    try:
        assert "training" in printed and "test accuracy" in printed and path.is_file()
        accuracy = float(printed.split("test accuracy ")[1].split("%")[0])
        assert accuracy > 95, printed
        host, port = address.rsplit(":", 1)
        assert request((host, int(port)), "GET", "/style.css")[0] == 200
    finally:
        stop(proc)
    assert set(tm.load(path)) == {f"{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")}


# ---------------------------------------------------------------- a real browser


def _browser_paths() -> tuple[str, str]:
    """(chromium, chromedriver), or a skip saying what is missing."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip('selenium is not installed (pip install -e ".[browser]")')
    browser = next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p),
        None,
    )
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
    )
    if browser is None or driver is None:
        pytest.skip(
            "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
        )
    return browser, driver


@pytest.fixture
def browser(tmp_path):
    browser_path, driver_path = _browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser_path
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=780,640",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


STROKES = {  # one stroke per digit, as points on the 280x280 pad
    "0": [(140 + 55 * np.sin(t), 140 - 85 * np.cos(t)) for t in np.linspace(0, 2 * np.pi, 37)],
    "1": [(150 - 12 * s, 50 + 180 * s) for s in np.linspace(0, 1, 12)],
    "7": [(80 + 130 * s, 60) for s in np.linspace(0, 1, 10)]
    + [(210 - 85 * s, 60 + 175 * s) for s in np.linspace(0, 1, 14)[1:]],
}


def draw(driver, pad, points) -> None:
    """One mouse stroke through the points (pad pixels; the pad is 280 CSS px wide)."""
    from selenium.webdriver.common.action_chains import ActionChains

    size = pad.size

    def offset(p):  # Selenium's offsets are from the element's centre
        return int(round(p[0] - size["width"] / 2)), int(round(p[1] - size["height"] / 2))

    actions = ActionChains(driver, duration=10)
    actions.move_to_element_with_offset(pad, *offset(points[0])).click_and_hold()
    for point in points[1:]:
        actions.move_to_element_with_offset(pad, *offset(point))
    actions.release().perform()


def wait_for_answer(driver, timeout: float = 15) -> str:
    """The text of #prediction once every stroke so far has its answer."""
    from selenium.webdriver.support.ui import WebDriverWait

    script = (
        "const p = document.getElementById('prediction');"
        "return p.dataset.strokes === p.dataset.answered ? [p.textContent, "
        "document.getElementById('status').textContent] : null;"
    )
    text, status = WebDriverWait(driver, timeout).until(lambda d: d.execute_script(script))
    assert status == "", status
    return text


@needs_mnist
@pytest.mark.slow
@longer_deadline(120)
def test_a_browser_draws_0_1_7_and_clears(browser, server):
    from selenium.webdriver.common.by import By

    browser.get(f"http://{server[0]}:{server[1]}/")
    pad = browser.find_element(By.ID, "pad")
    prediction = browser.find_element(By.ID, "prediction")
    clear = browser.find_element(By.ID, "clear")
    assert prediction.text == ""
    assert pad.value_of_css_property("touch-action") == "none"
    for digit, points in STROKES.items():
        draw(browser, pad, points)
        assert wait_for_answer(browser) == digit
        assert prediction.text == digit
        bars = browser.find_elements(By.CSS_SELECTOR, "#bars li")
        assert len(bars) == 10 and "best" in bars[int(digit)].get_attribute("class")
        fill = bars[int(digit)].find_element(By.CLASS_NAME, "fill")
        width = browser.execute_script("return arguments[0].style.width", fill)
        assert width.endswith("%") and float(width[:-1]) > 40  # the bar (it grows in 0.15 s)
        screenshot = os.environ.get("DIGITS_APP_SCREENSHOT")
        if screenshot and digit == "7":
            time.sleep(0.5)  # the bars' width transition
            browser.save_screenshot(screenshot)
        clear.click()
        assert prediction.text == ""
        ink = browser.execute_script(
            "const c = document.getElementById('pad');"
            "return c.getContext('2d').getImageData(0, 0, c.width, c.height).data"
            ".some((v, i) => i % 4 === 3 && v > 0);"
        )
        assert ink is False
    time.sleep(0.3)  # an answer arriving after Clear must not bring the digit back
    assert prediction.text == ""
