"""The explorer in a real browser: headless Chromium (Debian's package) driven by Playwright.

Each test opens one panel, moves every control, and checks what is drawn against the API
(whose numbers the API tests check against the library), that SVG elements are there, and
that the console stays free of errors; each saves a screenshot. Without a Chromium the
tests are skipped with a message, except in CI (``CI=true``), where that is a failure.
"""
from __future__ import annotations

import os

import pytest

pytest.importorskip("fastapi", reason="the explorer's tests need the explore extra (fastapi, uvicorn)")

from cnnlab.explore.browser import INSTALL_HINT, find_chromium  # noqa: E402

from .conftest import MODELS


def _browser_or_skip() -> None:
    missing = None
    if find_chromium() is None:
        missing = f"no Chromium found: {INSTALL_HINT}"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = f"Playwright for Python is missing: {INSTALL_HINT}"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser tests must run in CI: {missing}")
        pytest.skip(f"browser tests skipped: {missing}")


@pytest.fixture(scope="module")
def site(explore_home, tmp_path_factory):
    """The explorer served from a thread, and one Chromium context, for the whole module."""
    _browser_or_skip()
    import cnnlab.explore.images as images
    from cnnlab.explore.app import create_app
    from cnnlab.explore.browser import chromium_context
    from cnnlab.explore.server import ServerThread

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CNNLAB_DATA", str(explore_home["data"]))
        patch.setenv("CNNLAB_CACHE", str(explore_home["cache"]))
        patch.setattr(images, "SHARED_DATA", explore_home["data"] / "absent")
        app = create_app(runs=explore_home["runs"], models=MODELS)
        with ServerThread(app) as url, chromium_context() as context:
            yield {"url": url, "context": context, "shots": tmp_path_factory.mktemp("screenshots"),
                   "runs": explore_home["runs"]}


class Panel:
    """One page on one panel, with the console watched and helpers to wait for a redraw."""

    def __init__(self, site, name: str):
        self.name = name
        self.page = site["context"].new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.shots = site["shots"]
        self.page.goto(f"{site['url']}#{name}")
        self.version = 0
        self.wait()

    def wait(self, newer: bool = True, timeout: float = 20_000) -> None:
        """Until the panel shows a result newer than the last one seen (or an error, which fails)."""
        self.page.wait_for_function(
            "([id, v]) => { const s = document.getElementById(id); return s.dataset.state === 'error' || "
            "(s.dataset.state === 'ready' && Number(s.dataset.version || 0) > v); }",
            arg=[self.name, self.version if newer else -1], timeout=timeout)
        section = self.page.locator(f"#{self.name}")
        assert section.get_attribute("data-state") == "ready", section.locator(".error").text_content()
        self.version = int(section.get_attribute("data-version"))

    def slide(self, selector: str, value) -> None:
        """Move a range slider to ``value`` as a user's drag does: input events, then change."""
        self.page.locator(selector).evaluate(
            "(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true}));"
            " el.dispatchEvent(new Event('change', {bubbles: true})); }", str(value))
        self.wait()

    def api(self, path: str, **params) -> dict:
        response = self.page.request.get(path if path.startswith("http") else self.page.url.split("#")[0].rstrip("/")
                                         + path, params=params)
        assert response.ok, response.text()
        return response.json()

    def count(self, selector: str) -> int:
        return self.page.locator(selector).count()

    def finish(self) -> None:
        self.page.screenshot(path=str(self.shots / f"{self.name}.png"), full_page=True)
        assert self.errors == [], self.errors
        self.page.close()


def test_architectures_panel(site):
    panel = Panel(site, "architectures")
    page = panel.page
    models = panel.api("/api/models")["models"]
    page.wait_for_selector("#arch-stats")  # the first model's detail, drawn after the table
    panel.wait(newer=False)
    assert panel.count("#models-table tbody tr") == len(models)
    resnet20 = next(m for m in models if m["name"] == "resnet20")
    cell = page.locator('#models-table tr[data-model="resnet20"] td[data-params]')
    assert cell.text_content() == f"{resnet20['params']:,}"
    dataset = page.locator("#arch-dataset").input_value()
    shown = [m for m in models if m["dataset"] == dataset and m["reference_top1"] is not None]
    assert panel.count("#arch-scatter-macs circle.point") == len(shown)
    assert panel.count("#arch-scatter-macs circle.point.pareto") == sum(m["pareto_macs"] for m in shown)
    assert panel.count("#arch-scatter-params path.pareto") == 1
    for option in page.locator("#arch-dataset option").all():  # every data set's frontier
        page.select_option("#arch-dataset", option.get_attribute("value"))
        assert panel.count("#arch-scatter-params circle.point") >= 1

    page.locator('#models-table tr[data-model="resnet20"] td').nth(1).click()
    panel.wait()
    assert panel.count('#arch-diagram rect.unit[data-type="BasicBlock"]') == 3
    summary = panel.api("/api/models/resnet20/summary")
    bars = [r for r in summary["layers"] if not r["inplace"] or r["params"]]
    assert page.locator("#arch-stats b").first.text_content() == f"{summary['total_params']:,}"
    for metric in ("params", "macs", "activation_bytes", "receptive_field"):
        page.select_option("#arch-metric", metric)
        drawn = [value for value in (r[metric] for r in bars) if value is not None]  # zeros: bars of height 0
        assert panel.count("#arch-layers rect.bar") == len(drawn), metric

    page.locator('#models-table tr[data-model="resnet20"] input[type=checkbox]').check()
    page.locator('#models-table tr[data-model="resnet56"] input[type=checkbox]').check()  # two: the comparison
    panel.wait()
    assert panel.count("#compare-table thead th") == 3
    assert panel.count("#arch-compare .diagram") == 2
    page.select_option("#arch-dataset", "cifar10")
    page.locator('#arch-scatter-macs circle[data-name="resnet56"]').click()  # a point opens its model
    panel.wait()
    assert "resnet56" in page.locator("#arch-detail h3").first.text_content()
    panel.finish()


def test_augmentation_panel(site):
    panel = Panel(site, "augmentation")
    page = panel.page
    assert panel.count("#aug-grid .aug-item") == 8
    assert page.locator("#aug-spec").text_content() == "crop(pad=1)"
    panel.slide('#aug-params input[data-param="pad"]', 3)
    assert page.locator("#aug-spec").text_content() == "crop(pad=3)"
    page.select_option('#aug-params select[data-param="mode"]', "reflect")
    panel.wait()
    assert page.locator("#aug-spec").text_content() == "crop(pad=3, mode=reflect)"
    before = [img.get_attribute("src") for img in page.locator("#aug-grid img.aug-train").all()]
    seed = page.locator("#aug-seed").text_content()
    page.click("#aug-draw")
    panel.wait()
    assert page.locator("#aug-seed").text_content() != seed
    assert [img.get_attribute("src") for img in page.locator("#aug-grid img.aug-train").all()] != before
    page.click("#aug-images")
    panel.wait()
    panel.slide("#aug-count", 4)
    assert panel.count("#aug-grid .aug-item") == 4
    # The page's draw is the API's draw: same spec, same seeds, same pixels.
    again = panel.api("/api/augment", spec=page.locator("#aug-spec").text_content(), count=4,
                      seed=page.locator("#aug-seed").text_content(), source="digits",
                      image_seed=page.evaluate("aug.imageSeed"))
    assert [img.get_attribute("src") for img in page.locator("#aug-grid img.aug-train").all()] == \
        [item["train"] for item in again["images"]]
    names = [o.get_attribute("value") for o in page.locator("#aug-name option").all()]
    assert len(names) == 9
    for name in names:  # every augmentation, every one of its sliders
        page.select_option("#aug-name", name)
        panel.wait()
        for slider in page.locator("#aug-params input[type=range]").all():
            maximum = slider.get_attribute("max")
            panel.slide(f'#aug-params input[data-param="{slider.get_attribute("data-param")}"]', maximum)
        assert panel.count("#aug-grid img.aug-test") == 4
        if name in ("mixup", "cutmix", "label_smoothing"):
            assert "→" in page.locator("#aug-grid .caption").first.text_content()
    panel.finish()


def test_batchnorm_panel(site):
    panel = Panel(site, "batchnorm")
    page = panel.page
    assert page.locator("#bn-network").input_value() == "resnet20"
    assert not page.locator("#bn-shift").is_visible()  # the synthetic draw's controls only for it
    for chart in ("raw", "train", "eval", "single"):
        assert panel.count(f"#bn-hist-{chart} rect.bar") >= 10, chart
    panel.slide("#bn-gamma", 2)
    panel.slide("#bn-beta", -1)
    row = page.locator("#bn-train-row td")
    assert float(row.nth(1).get_attribute("data-mean")) == pytest.approx(-1.0, abs=1e-3)
    assert float(row.nth(2).get_attribute("data-std")) == pytest.approx(2.0, rel=1e-3)
    layer = page.locator("#bn-layer option").nth(2).get_attribute("value")
    page.select_option("#bn-layer", layer)
    panel.wait()
    expected = panel.api("/api/batchnorm", network="resnet20", layer=layer, batch_size=32, gamma=2, beta=-1)
    assert float(row.nth(2).get_attribute("data-std")) == pytest.approx(expected["train"]["std"], rel=1e-6)
    assert panel.count("#bn-channels rect.bar") == 2 * len(expected["channels"]["batch_mean"])
    page.select_option("#bn-channel", "1")
    panel.wait()
    panel.slide("#bn-batch", 1)
    assert "differ by up to 0" in page.locator("#bn-single-note").text_content()
    page.check("#bn-learned")
    panel.wait()
    assert page.locator("#bn-gamma").is_disabled()
    page.select_option("#bn-network", "run:trained")
    panel.wait()
    assert "in eval mode" in page.locator("#bn-source").text_content()  # a trained net runs as at inference
    page.select_option("#bn-network", "synthetic")
    panel.wait()
    assert page.locator("#bn-shift").is_visible()
    panel.slide("#bn-shift", 3)
    panel.slide("#bn-scale", 1.5)
    raw = page.locator("#bn-stats tr").nth(1).locator("td").nth(1).get_attribute("data-mean")
    assert float(raw) == pytest.approx(3.0, abs=1.0)
    panel.finish()


def test_gradient_flow_panel(site):
    panel = Panel(site, "gradient-flow")
    page = panel.page
    assert panel.count("#gf-layers path[data-series]") == 2 and panel.count("#gf-block-chart path[data-series]") == 2
    panel.slide("#gf-size", 8)
    panel.slide("#gf-batch", 4)
    panel.slide("#gf-depth", 32)
    assert panel.count("#gf-blocks tr[data-block]") == 15
    expected = panel.api("/api/gradient-flow", depth=32, batch_size=4, image_size=8, shortcut="true")
    shown = float(page.locator("#gf-ratio-residual").get_attribute("data-value"))
    assert shown == pytest.approx(expected["first_over_last"], rel=1e-9)
    assert page.locator("#gf-network").text_content() == "resnet32"
    page.uncheck("#gf-shortcut")
    panel.wait()
    assert page.locator("#gf-network").text_content() == "plain32"
    assert "none (plain)" in page.locator("#gf-blocks tr[data-block]").first.text_content()
    plain = panel.api("/api/gradient-flow", depth=32, batch_size=4, image_size=8, shortcut="false")
    first = float(page.locator("#gf-blocks tr[data-block] td[data-value]").first.get_attribute("data-value"))
    assert first == pytest.approx(plain["blocks"][0]["in_norm"], rel=1e-9)
    panel.finish()


def test_runs_panel(site):
    panel = Panel(site, "runs")
    page = panel.page
    assert panel.count("#runs-list tbody tr") == 4
    page.wait_for_selector("#runs-loss path.line")
    page.locator('#runs-list tr[data-run="healthy"] td').nth(1).click()
    panel.wait()
    assert panel.count("#runs-confusion rect[data-count]") == 100
    assert page.locator("#runs-confusion rect[data-count]").first.get_attribute("data-count") == "10"
    from cnnlab.train.diagnose import diagnose_run

    _, findings = diagnose_run(site["runs"] / "healthy")
    assert panel.count("#runs-findings .finding") == max(len(findings), 1)
    for finding in findings:
        assert f"{finding.name}: {finding.evidence}" in page.locator("#runs-findings").text_content()
    page.locator('#runs-list tr[data-run="group/overfit"] input[type=checkbox]').check()
    panel.wait()
    assert panel.count("#runs-compare thead th") == 3
    assert panel.count("#runs-loss path.line") == 4
    assert "overfitting" in page.locator("#runs-findings").text_content()
    page.locator('#runs-list tr[data-run="exploding"] td').nth(1).click()
    panel.wait()
    assert page.locator("#runs-findings .finding.problem b").text_content() == "exploding: "
    panel.finish()
