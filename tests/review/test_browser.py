"""The review page in a real browser (system Chromium driven by selenium, `browser` fixture)."""

from __future__ import annotations

import csv
import os
import time

import pytest

from satx.review.export import export_labels
from tests.support.browser import centre_loaded, needs_browser, wait_idle
from tests.support.review import review_config

TOKEN = "browser-test-token-0123456789"
pytestmark = needs_browser


@pytest.mark.slow
def test_keys_decide_undo_and_skip_and_the_export_has_those_rows(
    prediction_set, tmp_path, serve_review, browser
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    config = review_config(prediction_set, tmp_path / "review.sqlite", token=TOKEN)
    review = serve_review(config)
    browser.get(f"{review.url}/?token={TOKEN}")  # the cookie is set, then the page loads
    wait_idle(browser)
    assert browser.current_url == f"{review.url}/"
    WebDriverWait(browser, 30).until(centre_loaded)
    sizes = browser.execute_script(
        "return [...document.querySelectorAll('#grid img')].map(i => i.naturalWidth)"
    )
    assert len(sizes) == 9 and all(w > 0 for w in sizes)  # the tile and its 8 neighbours
    assert browser.find_element(By.ID, "reviewer").get_attribute("value") == "ana"
    assert "school" in browser.find_element(By.ID, "task").text

    shown = []
    body = browser.find_element(By.TAG_NAME, "body")
    for key in "yyynnus":
        shown.append(browser.execute_script("return state.tile.id"))
        body.send_keys(key)
        wait_idle(browser)
    store = review.app.store
    live = {r["decision"]: 0 for r in store.live_decisions()}
    for r in store.live_decisions():
        live[r["decision"]] += 1
    assert live == {"positive": 3, "negative": 1, "skip": 1}
    decided = store.query("SELECT id, state FROM tiles WHERE state != 'pending' ORDER BY id")
    # y y y n on the first four tiles; n on the fifth, undone (u), then skipped (s).
    assert {r["id"]: r["state"] for r in decided} == {
        shown[0]: "positive",
        shown[1]: "positive",
        shown[2]: "positive",
        shown[3]: "negative",
        shown[4]: "skip",
    }
    assert shown[5] != shown[4] and shown[6] == shown[4]  # u brought the fifth tile back
    WebDriverWait(browser, 30).until(centre_loaded)
    assert browser.find_element(By.ID, "reviewed").text.startswith("5 (3 confirmed, 1 rejected")
    assert "%" in browser.find_element(By.ID, "precision").text
    assert browser.find_elements(By.CSS_SELECTOR, "#overview svg rect.cell-positive")
    href = browser.find_element(By.ID, "maplink").get_attribute("href")
    assert href.startswith("https://www.openstreetmap.org/?mlat=")

    browser.find_element(By.ID, "no").click()  # the buttons do what the keys do
    wait_idle(browser)
    assert len(store.live_decisions()) == 6
    body.send_keys("yu")  # typed faster than the page answers: done in order all the same
    wait_idle(browser)
    assert [r["decision"] for r in store.live_decisions()][-1] == "negative"
    assert len(store.live_decisions()) == 6
    body.send_keys("ys")
    wait_idle(browser)
    assert [r["decision"] for r in store.live_decisions()][-2:] == ["positive", "skip"]

    shot = tmp_path / "review.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000

    export_labels(store, str(tmp_path / "labels.csv"))
    with open(tmp_path / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    by_id = {r["id"]: r["state"] for r in store.query("SELECT id, state FROM tiles")}
    tiles = {
        r["id"]: (r["z"], r["x"], r["y"]) for r in store.query("SELECT id, z, x, y FROM tiles")
    }
    want = sorted(
        (*tiles[i], {"positive": "school", "negative": "not_school"}[s])
        for i, s in by_id.items()
        if s in ("positive", "negative")
    )
    assert sorted((int(r["z"]), int(r["x"]), int(r["y"]), r["label"]) for r in rows) == want
    assert len(rows) == 6  # 3 + 1 by keys, 1 by the button, 1 more from the fast "yn"


@pytest.mark.slow
@pytest.mark.realdata
def test_the_page_shows_real_tiles_and_their_neighbourhood(tmp_path, serve_review, browser):
    """Real z17 JPEGs named x-y-z: the screenshot in docs/ comes from this test."""
    import mercantile
    import numpy as np

    from satx.config import ReviewConfig, SourceConfig
    from tests.support.helpers import shared_data
    from tests.support.review import write_predictions

    folder = shared_data("xyz-tiles")
    tiles = sorted(mercantile.Tile(*map(int, p.stem.split("-"))) for p in folder.glob("*-*-17.jpg"))
    centre = mercantile.Tile(62093, 50163, 17)
    scores = np.array([0.97 if t == centre else 0.6 + 0.03 * i for i, t in enumerate(tiles)])
    config = ReviewConfig(
        predictions=write_predictions(tmp_path / "pred", tiles, scores),
        source=SourceConfig(tiles=str(folder / "{x}-{y}-{z}.jpg")),
        db=str(tmp_path / "review.sqlite"),
        port=0,
        reviewer="mapper",
    )
    review = serve_review(config)
    lowest = review.app.store.query("SELECT id FROM tiles ORDER BY score LIMIT 3")
    for k, (row, decision) in enumerate(
        zip(lowest, ["positive", "negative", "positive"], strict=True)
    ):
        review.app.store.decide(row["id"], decision, "ana", time.time() - 600 + 240 * k)
    browser.get(f"{review.url}/")
    wait_idle(browser)
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 30).until(centre_loaded)
    widths = browser.execute_script(
        "return [...document.querySelectorAll('#grid img')].map(i => [i.dataset.dx, i.dataset.dy,"
        " i.naturalWidth, i.classList.contains('missing')])"
    )
    for dx, dy, width, missing in widths:
        t = mercantile.Tile(centre.x + int(dx), centre.y + int(dy), 17)
        if t in tiles:
            assert width == 256 and not missing
        else:  # 62092-50162 has no image: shown as a gap, never a blank tile
            assert width == 0 and missing
    shot = tmp_path / "review.png"
    browser.save_screenshot(str(shot))
    if os.environ.get("SATX_REVIEW_SCREENSHOT"):  # how docs/review.jpg is made
        from PIL import Image

        Image.open(shot).convert("RGB").save(os.environ["SATX_REVIEW_SCREENSHOT"], quality=85)


ATTACK_PAGE = """<!doctype html><html><body><script>
// What a page on another site can do: post a text/plain form, whose body is not checked for
// JSON until it is read, with a same-origin decision hidden after the first {limit} bytes.
const hidden = "POST /api/decision HTTP/1.1\\r\\nHost: 127.0.0.1:{port}\\r\\n" +
  "Content-Type: application/json\\r\\nContent-Length: {length}\\r\\n\\r\\n" + {decision};
const form = document.createElement("form");
form.method = "POST";
form.enctype = "text/plain";
form.action = "http://127.0.0.1:{port}/api/decision";
const field = document.createElement("input");
field.type = "hidden";
field.name = "a".repeat({limit}) + hidden;
field.value = "";
form.appendChild(field);
document.body.appendChild(form);
form.submit();
</script></body></html>"""


@pytest.mark.slow
def test_a_page_on_another_site_cannot_smuggle_a_decision(
    prediction_set, tmp_path, serve_review, browser
):
    import functools
    import json
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from selenium.webdriver.support.ui import WebDriverWait

    from satx.review.protocol import MAX_BODY

    review = serve_review(review_config(prediction_set, tmp_path / "review.sqlite"))
    decision = json.dumps({"id": 1, "decision": "positive", "reviewer": "ana"})
    site = tmp_path / "evil"
    site.mkdir()
    (site / "index.html").write_text(
        ATTACK_PAGE.replace("{port}", str(review.port))
        .replace("{limit}", str(MAX_BODY))
        .replace("{length}", str(len(decision)))
        .replace("{decision}", json.dumps(decision))
    )
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(site))
    evil = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        # localhost is another site than 127.0.0.1: the browser sends the form cross-site.
        browser.get(f"http://localhost:{evil.server_address[1]}/index.html")
        target = f"http://127.0.0.1:{review.port}/api/decision"
        WebDriverWait(browser, 30).until(lambda d: d.current_url == target)
        answer = browser.page_source
    finally:
        evil.shutdown()
        evil.server_close()
    time.sleep(1.0)  # anything smuggled would have been answered by now
    assert review.app.store.live_decisions() == []
    assert "Request Entity Too Large" in answer  # the form's body was over the limit: 413


def test_a_site_shows_its_point_where_its_lon_lat_falls(site_set, tmp_path, serve_review, browser):
    """The marker sits at the site's point (a class-activation peak with predict --localize)."""
    import mercantile

    from satx.config import SitesConfig
    from satx.sites.run import find_sites

    sites = tmp_path / "sites"
    find_sites(SitesConfig(predictions=site_set["predictions"], output=str(sites)))
    review = serve_review(
        review_config(site_set, tmp_path / "r.sqlite", predictions="", sites=str(sites))
    )
    browser.get(f"{review.url}/")
    wait_idle(browser)
    shown = browser.execute_script(
        "const p = document.getElementById('point'); const t = state.tile;"
        "return [p.hidden, p.style.left, p.style.top, t.z, t.x, t.y, t.site.lon, t.site.lat,"
        " document.getElementById('sitepoint').textContent]"
    )
    hidden, left, top, z, x, y, lon, lat, text = shown
    assert not hidden and text == f"{lon:.6f}, {lat:.6f}"
    west, north = mercantile.xy(*mercantile.ul(x - 1, y - 1, z))
    east, south = mercantile.xy(*mercantile.ul(x + 2, y + 2, z))
    px, py = mercantile.xy(lon, lat)
    assert float(left.rstrip("%")) == pytest.approx(100 * (px - west) / (east - west), abs=0.01)
    assert float(top.rstrip("%")) == pytest.approx(100 * (north - py) / (north - south), abs=0.01)
