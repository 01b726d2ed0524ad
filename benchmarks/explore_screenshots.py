"""The README's screenshots of ``cnnlab explore``: one PNG per panel, from headless Chromium.

Serves the explorer with the whole zoo, CIFAR-10 from the data root (``$CNNLAB_DATA`` or
``../shared/data``; the digits otherwise) and the runs kept in the repository
(``benchmarks/cpu-runs``: ResNet-20 and ResNet-56 on CIFAR-10), sets each panel to a
telling state and saves ``docs/explore/<panel>.png``.

    python benchmarks/explore_screenshots.py [--runs benchmarks/cpu-runs] [--out docs/explore]
"""
from __future__ import annotations

import argparse
from pathlib import Path

READY = ("([id, v]) => { const s = document.getElementById(id);"
         " return s.dataset.state === 'ready' && Number(s.dataset.version || 0) > v; }")


def _ready(page, panel: str) -> None:
    """Until the panel has drawn its first result; its error message if it could not."""
    page.wait_for_function("id => ['ready', 'error'].includes(document.getElementById(id).dataset.state)",
                           arg=panel, timeout=600_000)
    if page.locator(f"#{panel}").get_attribute("data-state") == "error":
        raise SystemExit(f"{panel}: {page.locator(f'#{panel} .error').text_content()}")


def _settle(page, panel: str) -> None:
    """Until the panel's latest request is drawn (no redraw within half a second)."""
    while True:
        version = int(page.locator(f"#{panel}").get_attribute("data-version") or 0)
        try:
            page.wait_for_function(READY, arg=[panel, version], timeout=500)
        except Exception:  # Playwright's TimeoutError: nothing newer came, the panel is settled
            return


def _slide(page, panel: str, selector: str, value) -> None:
    """Move a slider and wait for the panel's redraw (however long its computation takes)."""
    version = int(page.locator(f"#{panel}").get_attribute("data-version") or 0)
    page.locator(selector).evaluate("(el, v) => { el.value = v; el.dispatchEvent(new Event('input', "
                                    "{bubbles: true})); el.dispatchEvent(new Event('change', {bubbles: true})); }",
                                    str(value))
    page.wait_for_function(READY, arg=[panel, version], timeout=600_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="benchmarks/cpu-runs")
    parser.add_argument("--out", default="docs/explore")
    args = parser.parse_args()

    from cnnlab.explore.app import create_app
    from cnnlab.explore.browser import chromium_context
    from cnnlab.explore.server import ServerThread

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    app = create_app(runs=args.runs)
    with ServerThread(app) as base, chromium_context(width=1360, height=960) as context:
        page = context.new_page()
        page.goto(base + "#architectures")
        _ready(page, "architectures")
        page.wait_for_selector("#arch-stats", timeout=600_000)
        page.evaluate("name => showModel(name)", "resnet50")
        for name in ("resnet50", "vgg16"):
            page.locator(f'#models-table tr[data-model="{name}"] input[type=checkbox]').check()
        _settle(page, "architectures")
        page.screenshot(path=str(out / "architectures.png"), full_page=True)

        page.goto(base + "#augmentation")
        _ready(page, "augmentation")
        _settle(page, "augmentation")
        page.select_option("#aug-name", "cutout")
        _settle(page, "augmentation")
        page.screenshot(path=str(out / "augmentation.png"), full_page=True)

        page.goto(base + "#batchnorm")
        _ready(page, "batchnorm")
        _settle(page, "batchnorm")
        _slide(page, "batchnorm", "#bn-gamma", 1.5)
        _slide(page, "batchnorm", "#bn-beta", 0.5)
        _settle(page, "batchnorm")
        page.screenshot(path=str(out / "batchnorm.png"), full_page=True)

        page.goto(base + "#gradient-flow")
        _ready(page, "gradient-flow")
        _settle(page, "gradient-flow")
        _slide(page, "gradient-flow", "#gf-depth", 56)
        _settle(page, "gradient-flow")
        page.screenshot(path=str(out / "gradient-flow.png"), full_page=True)

        page.goto(base + "#runs")
        _ready(page, "runs")
        _settle(page, "runs")
        rows = page.locator("#runs-list tbody tr input[type=checkbox]").all()
        for box in rows[:2]:
            box.check()
            _settle(page, "runs")
        page.screenshot(path=str(out / "runs.png"), full_page=True)
    for panel in ("architectures", "augmentation", "batchnorm", "gradient-flow", "runs"):
        print(f"wrote {out / (panel + '.png')}")


if __name__ == "__main__":
    main()
