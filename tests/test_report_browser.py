"""report.html in a real browser: headless Chromium from the distribution's packages, driven by selenium.

The page must render from disk with no console error and no network request, move its playhead, switch
class, and compute the same numbers as the Python path when interventions are applied through it.
``.ci/run`` installs chromium and chromium-driver and sets MOTIF_BROWSER_TESTS=required, so the tests
fail there instead of skipping when the browser is missing.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers_explain import CLASS_NAMES, CONCEPT_NAMES, marked_task, spans_of
from motif.explain import explain_sequence, write_explanation
from motif.model import explain_class
from motif.model.corrections import corrective_edits
from motif.video import write_video

CHROMIUM = os.environ.get("MOTIF_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MOTIF_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1300,1000")
ATOL = 1e-5


def _unavailable(reason: str):
    if os.environ.get("MOTIF_BROWSER_TESTS") == "required":
        pytest.fail(f"browser tests are required here but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed (pip install -e '.[dev]')")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).is_file() and shutil.which(path) is None:
            _unavailable(f"{path} is missing (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A report of the marked task: a video of at least 8 windows of 0.5 s, its clip (MPEG-4 part 2,
    re-encoded for the page) and a thumbnail per window."""
    task = marked_task()
    index = next(i for i, x in enumerate(task["test_x"]) if len(x) >= 8)
    x = task["test_x"][index]
    folder = tmp_path_factory.mktemp("browser_report")
    frames = [np.full((48, 64, 3), (25 * i) % 255, np.uint8) for i in range(4 * len(x))]
    clip = write_video(folder / "clip_source.mp4", frames, fps=8.0, codec="mpeg4")
    spans = spans_of(len(x))
    result = explain_sequence(task["model"], x, spans, class_names=CLASS_NAMES, concept_names=CONCEPT_NAMES,
                              video_id="demo")
    thumbnails = {t: np.full((18, 24, 3), 20 * t, np.uint8) for t in range(len(x))}
    paths = write_explanation(result, folder / "out", thumbnails, video_path=clip)
    return {"model": task["model"], "x": x, "spans": spans, "result": result, "report": paths["report"]}


def _open(browser, report: Path):
    browser.get_log("browser")
    browser.get_log("performance")
    browser.get(report.resolve().as_uri())
    ready = browser.execute_script("return document.body.dataset.ready")
    assert ready == "true", "report.html did not finish rendering"


def _requests(browser) -> list[str]:
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _python_after(demo, edits: list[str], class_index: int):
    return explain_sequence(demo["model"], demo["x"], demo["spans"], class_names=CLASS_NAMES,
                            concept_names=CONCEPT_NAMES, class_index=class_index, interventions=edits)


def test_report_renders_offline_and_recomputes_the_model(browser, demo):
    _open(browser, demo["report"])
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    page = demo["report"].resolve().as_uri()
    outside = [u for u in _requests(browser) if not u.startswith(("data:", "blob:", "chrome:", "about:")) and u != page]
    assert outside == []
    logits = browser.execute_script("return motifReport.logits()")
    np.testing.assert_allclose(logits, demo["result"].output.logits.numpy(), atol=ATOL)
    e = demo["result"].explanation
    page_e = browser.execute_script("return motifReport.explanation()")
    np.testing.assert_allclose(page_e["G"], e.global_importance.numpy(), atol=ATOL)
    np.testing.assert_allclose(page_e["pi"], e.window_importance.numpy(), atol=ATOL)
    assert abs(page_e["residual"]) < 1e-9
    video = browser.execute_script("const v = document.querySelector('video'); return v && v.src.slice(0, 15)")
    assert video == "data:video/mp4;"  # re-encoded as H.264 and embedded


def test_playhead_follows_clicks_and_seeks_the_video(browser, demo):
    from selenium.webdriver.common.by import By

    _open(browser, demo["report"])
    spans = demo["spans"].numpy()
    before = browser.find_element(By.CSS_SELECTOR, "#timeline line.playhead").get_attribute("x1")
    card = browser.find_element(By.CSS_SELECTOR, '#strip .window[data-window="5"]')
    browser.execute_script("arguments[0].scrollIntoView()", card)
    card.click()
    position = browser.execute_script("return [motifReport.time(), motifReport.window()]")
    assert position == [pytest.approx(spans[5, 0]), 5]
    assert "now" in card.get_attribute("class")
    assert "now" not in browser.find_element(By.CSS_SELECTOR, '#strip .window[data-window="0"]').get_attribute("class")
    after = browser.find_element(By.CSS_SELECTOR, "#timeline line.playhead").get_attribute("x1")
    assert float(after) > float(before)
    current = browser.execute_script("return document.querySelector('video').currentTime")
    assert current == pytest.approx(spans[5, 0], abs=0.05)
    assert browser.find_element(By.ID, "contrast-window-title").text.startswith("In window 5")


def test_class_switch_explains_the_chosen_class_exactly(browser, demo):
    from selenium.webdriver.common.by import By

    _open(browser, demo["report"])
    result = demo["result"]
    other = next(k for k in result.probabilities.argsort(descending=True).tolist() if k != result.target)
    browser.find_element(By.CSS_SELECTOR, f'#class-switch button[data-class="{other}"]').click()
    assert browser.execute_script("return motifReport.currentClass()") == other
    assert CLASS_NAMES[other] in browser.find_element(By.ID, "equation").text
    reference = explain_class(result.output.concepts, result.classifier_weight, result.classifier_bias,
                              demo["model"].tau, class_index=other)
    page = browser.execute_script("return motifReport.explanation()")
    np.testing.assert_allclose(page["G"], reference.global_importance.numpy(), atol=ATOL)
    np.testing.assert_allclose(page["pi"], reference.window_importance.numpy(), atol=ATOL)
    first_row = browser.find_element(By.CSS_SELECTOR, "#concept-table tbody tr").get_attribute("data-concept")
    assert int(first_row) == int(reference.global_importance.argmax())


def test_interventions_in_the_page_equal_the_python_path(browser, demo):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _open(browser, demo["report"])
    result = demo["result"]
    predicted = result.predicted
    # 1. the form: zero a whole concept
    Select(browser.find_element(By.ID, "edit-mode")).select_by_value("zero")
    Select(browser.find_element(By.ID, "edit-target")).select_by_value("concept")
    browser.find_element(By.ID, "edit-concept").send_keys(CONCEPT_NAMES[5])
    browser.find_element(By.ID, "edit-apply").click()
    # 2. a typed spec: set a cell and a window range
    browser.find_element(By.ID, "edit-spec").send_keys("set:cell=2,Green Triangle,0.75")
    browser.find_element(By.ID, "spec-apply").click()
    assert browser.find_element(By.ID, "edit-error").text == ""
    edits = browser.execute_script("return motifReport.edits()")
    assert edits == [f"zero:concept={CONCEPT_NAMES[5]}", "set:cell=2,Green Triangle,0.75"]
    # the corrective suggestions equal the evaluation's oracle on the edited z
    z = _python_after(demo, edits, predicted).intervention.after.concepts
    logits_now = browser.execute_script("return motifReport.logits()")
    now = int(np.argmax(logits_now))
    true_class = int(browser.find_element(By.ID, "correct-class").get_attribute("value"))
    oracle = corrective_edits(z[None], torch.zeros(1, len(z), dtype=torch.bool), result.classifier_weight,
                              result.classifier_bias, demo["model"].tau, torch.tensor([now]),
                              torch.tensor([true_class]), 4)
    page_suggestions = browser.execute_script(f"return motifReport.suggestions({true_class}, 4)")
    assert [[s["window"], s["index"]] for s in page_suggestions] == oracle.cells[0, :len(page_suggestions)].tolist()
    np.testing.assert_allclose([s["value"] for s in page_suggestions], oracle.values[0, :len(page_suggestions)],
                               atol=ATOL)
    # 3. apply the best suggestion with its button
    browser.find_element(By.CSS_SELECTOR, '#suggestions button[data-suggestion="0"]').click()
    edits = browser.execute_script("return motifReport.edits()")
    assert len(edits) == 3
    python = _python_after(demo, edits, result.target)
    np.testing.assert_allclose(browser.execute_script("return motifReport.logits()"),
                               python.intervention.after.logits.numpy(), atol=ATOL)
    page = browser.execute_script("return motifReport.explanation()")
    after = python.intervention.after_explanation
    np.testing.assert_allclose(page["G"], after.global_importance.numpy(), atol=ATOL)
    np.testing.assert_allclose(page["pi"], after.window_importance.numpy(), atol=ATOL)
    assert page["logit"] == pytest.approx(float(after.logit), abs=ATOL)
    assert not browser.find_element(By.ID, "live-banner").get_attribute("hidden")
    # reset restores the model's numbers
    browser.find_element(By.ID, "edit-reset").click()
    np.testing.assert_allclose(browser.execute_script("return motifReport.logits()"), result.output.logits.numpy(),
                               atol=ATOL)
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_page_rejects_bad_specs_with_the_python_messages(browser, demo):
    from selenium.webdriver.common.by import By

    _open(browser, demo["report"])
    browser.find_element(By.ID, "edit-spec").send_keys("zero:concept=purple")
    browser.find_element(By.ID, "spec-apply").click()
    assert "unknown concept 'purple'" in browser.find_element(By.ID, "edit-error").text
    message = browser.execute_script("try { motifReport.apply('zero:window=99'); } catch (e) { return e.message; }")
    assert "window 99 does not exist" in message
    assert browser.execute_script("return motifReport.edits()") == []


def test_concept_edits_cover_every_view_of_an_evidence_model(browser, demo, tmp_path):
    """Variant "evidence" gives each concept three channels (now / before / after); an edit that names a
    concept or a cell edits all of them in the page, exactly as the Python --intervene path does."""
    from motif.model import TemporalConceptBottleneck

    torch.manual_seed(3)
    x = demo["x"]
    model = TemporalConceptBottleneck(len(CONCEPT_NAMES), len(CLASS_NAMES), num_layers=1, variant="evidence")
    model.set_input_statistics(torch.full((len(CONCEPT_NAMES),), 0.2), torch.full((len(CONCEPT_NAMES),), 0.1))
    with torch.no_grad():
        model.classifier.weight.uniform_(0.0, 1.0)
    model.eval()
    result = explain_sequence(model, x, demo["spans"], class_names=CLASS_NAMES, concept_names=CONCEPT_NAMES,
                              video_id="views")
    assert len(result.concept_names) == 3 * len(CONCEPT_NAMES)
    report = write_explanation(result, tmp_path / "out", {})["report"]
    _open(browser, report)
    np.testing.assert_allclose(browser.execute_script("return motifReport.logits()"), result.output.logits.numpy(),
                               atol=ATOL)
    edits = [f"zero:concept={CONCEPT_NAMES[1]}", f"set:cell=2,{CONCEPT_NAMES[4]},0.75"]
    for spec in edits:
        browser.execute_script("motifReport.apply(arguments[0])", spec)
    python = explain_sequence(model, x, demo["spans"], class_names=CLASS_NAMES, concept_names=CONCEPT_NAMES,
                              class_index=result.target, interventions=edits)
    np.testing.assert_allclose(browser.execute_script("return motifReport.logits()"),
                               python.intervention.after.logits.numpy(), atol=ATOL)
