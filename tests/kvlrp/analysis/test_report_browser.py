"""``report.html`` in a real headless browser (Debian's Chromium over the DevTools protocol):
it loads with no console error and no network request, every image decodes to a non-zero
size, and a screenshot of the whole page is not blank.

Needs ``/usr/bin/chromium`` and the ``websocket-client`` package: ``tox -e browser`` installs
both (elsewhere skipped, saying why, where either is missing; with ``KVLRP_REQUIRE_BROWSER`` set,
as ``tox -e browser`` sets it, that is a failure). ``KVLRP_REPORT_SCREENSHOT=FILE.png`` keeps the
screenshot.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from headless_browser import HeadlessChromium, chromium_path
from PIL import Image
from report_checks import make_report_folder

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser_page(small_model, synthetic_shards, tmp_path_factory):
    """A report of real runs, loaded in headless Chromium."""
    executable = chromium_path()
    missing = None
    if executable is None:
        missing = ("no Chromium (/usr/bin/chromium): `tox -e browser` installs Debian's "
                   "chromium package")
    elif importlib.util.find_spec("websocket") is None:
        missing = "websocket-client is not installed (`tox -e browser` installs it)"
    if missing:
        if os.environ.get("KVLRP_REQUIRE_BROWSER"):  # (tox -e browser: a skip is a failure)
            pytest.fail(missing)
        pytest.skip(missing)
    model, info = small_model
    root = make_report_folder(model, info, synthetic_shards, tmp_path_factory.mktemp("report"))
    with HeadlessChromium(executable, width=1280, height=900) as browser:
        browser.load((root / "report.html").resolve().as_uri())
        yield browser, root


def test_page_loads_without_console_errors_or_network(browser_page):
    browser, _ = browser_page
    assert browser.evaluate("document.readyState") == "complete"
    assert browser.evaluate("document.title").startswith("kvlrp report")
    assert browser.console_errors() == []
    outside = [u for u in browser.requested_urls() if not u.startswith(("file:", "data:"))]
    assert outside == []


def test_every_image_decodes_to_a_non_zero_size(browser_page):
    browser, _ = browser_page
    images = browser.evaluate(
        "Promise.all(Array.from(document.images).map(i => i.decode().then(() => 0, () => 0)"
        ".then(() => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])))")
    assert len(images) >= 8  # figures, and each heatmap's animation and still strip
    broken = [alt for alt, complete, w, h in images if not (complete and w > 0 and h > 0)]
    assert broken == []
    assert sum(alt.endswith(", animated") for alt, *_ in images) == 2


def test_a_screenshot_of_the_page_is_not_blank(browser_page, tmp_path):
    browser, _ = browser_page
    png = browser.screenshot(tmp_path / "report.png")
    with Image.open(png) as im:
        pixels = np.asarray(im.convert("RGB"), dtype=np.float64)
    assert pixels.shape[0] > 2000 and pixels.shape[1] == 1280  # the whole page, not a window
    assert pixels.var() > 0
    assert (pixels.std(axis=(0, 1)) > 10).all()  # text, figures and colour, not a flat page
    keep = os.environ.get("KVLRP_REPORT_SCREENSHOT")
    if keep:
        Path(keep).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, keep)
