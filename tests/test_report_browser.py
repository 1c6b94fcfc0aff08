"""The HTML report in a real browser: headless Chromium driven by selenium with the system chromedriver.

Needs the Debian packages chromium and chromium-driver and the selenium Python package; skipped without them.
Nothing is downloaded: the driver path is given explicitly, so selenium-manager never runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pasr.report.build import build_report

pytestmark = pytest.mark.browser

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FIXTURES = Path(__file__).parent / "fixtures" / "report"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (test extra)")
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("chromium / chromium-driver not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tmp_path_factory.mktemp("chromium-profile")
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-quic", f"--user-data-dir={profile}",
                "--window-size=1280,1600"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def page(browser, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    build_report([FIXTURES / "run_a", FIXTURES / "run_b"], out, max_examples=10)
    browser.get((out / "report.html").resolve().as_uri())
    return browser


def test_page_renders_tables_and_plots(page):
    from selenium.webdriver.common.by import By

    assert page.title == "PASR report"
    table = page.find_element(By.ID, "table1")
    assert table.is_displayed() and "smollm2-pasr" in table.text and "83.3" in table.text
    images = page.find_elements(By.CSS_SELECTOR, ".plots img")
    assert len(images) == 4
    for img in images:
        assert page.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 0


def test_model_text_does_not_execute(page):
    from selenium.webdriver.common.by import By

    assert page.execute_script("return typeof window.__pwned") == "undefined"
    assert page.execute_script("return document.scripts.length") == 1
    texts = [e.get_attribute("textContent") for e in page.find_elements(By.CSS_SELECTOR, "details.example .text")]
    assert any("<script>window.__pwned=1</script>" in t for t in texts)  # shown as text instead


def test_example_expands_and_shows_highlighted_refine(page):
    from selenium.webdriver.common.by import By

    details = page.find_element(
        By.CSS_SELECTOR, 'section.group[data-run="smollm2-pasr"][data-benchmark="gsm8k"][data-method="pasr"] '
                         'details.example[data-refined="1"]')
    refine = details.find_element(By.CSS_SELECTOR, ".seg-refine")
    assert details.get_attribute("open") is None and not refine.is_displayed()
    summary = details.find_element(By.TAG_NAME, "summary")
    page.execute_script("arguments[0].scrollIntoView({block: 'center'})", summary)
    summary.click()
    assert details.get_attribute("open") is not None
    assert refine.is_displayed() and "3 x 4 = 12" in refine.text
    assert refine.value_of_css_property("background-color") != "rgba(0, 0, 0, 0)"


def test_filters_hide_other_methods(page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(page.find_element(By.ID, "f-method")).select_by_value("self-refine-oracle")
    visible = [g for g in page.find_elements(By.CSS_SELECTOR, "section.group") if g.is_displayed()]
    assert {g.get_attribute("data-method") for g in visible} == {"self-refine-oracle"} and len(visible) == 3
    assert page.find_element(By.ID, "f-count").text == "9 examples shown"
    page.find_element(By.ID, "f-wrong").click()  # only wrong answers: oracle has drop d3 (F1 0.5 counts right)
    assert page.find_element(By.ID, "f-count").text == "0 examples shown"
    page.find_element(By.ID, "f-wrong").click()
    Select(page.find_element(By.ID, "f-method")).select_by_value("")
    assert page.find_element(By.ID, "f-count").text.startswith("52 ")
