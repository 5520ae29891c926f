"""The web demo in a real browser: Debian's headless Chromium, driven by Selenium through chromedriver.

Only the distribution's browser is used (``apt-get install chromium chromium-driver``; ``make
setup`` and ``.ci/run`` install them as root): Selenium is given both paths, so it never looks
for or downloads a driver. The screenshot is kept in ``tests-artifacts/serve-screenshot.png``
at the repository root (gitignored), for a person to look at.
"""
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOT = Path(__file__).resolve().parents[2] / "tests-artifacts" / "serve-screenshot.png"

if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
    pytest.skip("no chromium + chromedriver from the system's packages: `apt-get install chromium chromium-driver` "
                "(make setup does it as root)", allow_module_level=True)
pytest.importorskip("selenium", reason="the browser test needs selenium: pip install -e '.[test]'")


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1900"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    yield driver
    driver.quit()


def test_draw_upload_predict_and_chat_in_the_browser(runs, pages, browser, monkeypatch):
    from selenium.common.exceptions import (ElementClickInterceptedException, NoSuchElementException,
                                            StaleElementReferenceException)
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    url, demo = pages["ascii"]
    served = demo.served
    expected = served.read(served.read_image(runs.root / "digit.png")).answer
    browser.get(url)
    # The page re-renders as results arrive: an element found a moment ago may be replaced, so every
    # step is retried until it holds (or 30 s pass).
    wait = WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException, NoSuchElementException,
                                                          ElementClickInterceptedException))

    def text_of(css, attribute=None):
        el = browser.find_element(By.CSS_SELECTOR, css)
        return (el.get_attribute(attribute) if attribute else el.text) or ""

    def status():
        return text_of("#status textarea", "value")

    def click(text, css="button"):
        def attempt(d):
            el = next((b for b in d.find_elements(By.CSS_SELECTOR, css) if b.text == text and b.is_displayed()), None)
            return el is not None and el.click() is None
        wait.until(attempt)

    def upload(path):
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(path)) or True)

    click("Draw", "button[role=tab]")                        # the brush is chosen for the visitor: draw at once
    canvas = wait.until(lambda d: [c for c in d.find_elements(By.CSS_SELECTOR, "#sketchpad canvas") if c.is_displayed()])
    ActionChains(browser).move_to_element_with_offset(canvas[0], -60, 0).click_and_hold().move_by_offset(60, 0) \
        .move_by_offset(60, 0).release().perform()
    click("Predict the drawing")
    wait.until(lambda d: status().startswith("Predicted:"))

    click("Upload", "button[role=tab]")
    upload(runs.root / "notes.txt")
    wait.until(lambda d: status().startswith("Error: notes.txt: cannot decode image"))   # a message, no traceback
    assert "Traceback" not in browser.page_source
    click("", "#upload button[aria-label=Clear]")
    upload(runs.root / "digit.png")
    wait.until(lambda d: status().startswith("Predicted:"))          # an upload is read at once

    calls = []
    monkeypatch.setattr(served, "read", lambda *a: calls.append(a) or type(served).read(served, *a))
    click("Predict")
    wait.until(lambda d: calls and status().startswith("Predicted:"))
    assert status().startswith(f"Predicted: {expected} (p = ")
    # the bar chart's title is the predicted class
    assert wait.until(lambda d: text_of("[data-testid=label-output-value]").strip()) == expected

    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "textarea[placeholder^='Ask about the picture']")
               .send_keys("Which digit is it?", Keys.ENTER) or True)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid=bot]"))
    assert wait.until(lambda d: text_of("[data-testid=user]").strip()) == "Which digit is it?"
    browser.execute_script("document.querySelectorAll('[data-testid=toast-close]').forEach(b => b.click())")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    browser.find_element(By.TAG_NAME, "body").screenshot(str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 20_000
