"""Latency of ``cnnlab explore``: each API endpoint warm, each panel's redraw in the browser, first paint.

The explorer's promise is that every panel answers in under 300 ms once warm (model
summaries cached, gradient flow on small inputs) and that the page paints in under 1 s.
This script serves the explorer from a thread with the real zoo, CIFAR-10 from the data
root (``$CNNLAB_DATA`` or ``../shared/data``) and the runs of ``--runs``, then measures:

- per endpoint: the first (cold) call, then the median of ``--repeats`` warm calls. A
  warm call is a new request, not a cached answer: the augmentation draws a fresh seed,
  the BN panel moves gamma, the gradient flow takes a new seed (a new backward pass);
- per panel, in headless Chromium: the median time from moving a control to the redrawn
  chart (the page's own request(s) and drawing);
- first paint: ``first-contentful-paint`` of the page, and the time until the
  architectures panel shows its data.

    python benchmarks/bench_explore.py [--runs benchmarks/cpu-runs] [--repeats 9] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import urllib.parse
import urllib.request

import torch


def _get(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{url}: HTTP {response.status}")
    return (time.perf_counter() - start) * 1000


def endpoint_latencies(base: str, run: str | None, repeats: int) -> list[dict]:
    """(cold ms, median warm ms) per endpoint; ``vary`` gives the i-th warm request its parameters."""
    cases = [
        ("/api/models", lambda i: {}),
        ("/api/models/resnet50", lambda i: {}),
        ("/api/models/resnet50/summary", lambda i: {}),
        ("/api/models/efficientnet_b7/summary", lambda i: {}),
        ("/api/augment (cifar10, crop(pad=4), 8 images)", lambda i: {"spec": "crop(pad=4)", "count": 8}),
        ("/api/augment (cifar10, random_resized_crop, 16 images)",
         lambda i: {"spec": "random_resized_crop(32, min_scale=0.08)", "count": 16}),
        ("/api/batchnorm (resnet20, batch 32, a new gamma)",
         lambda i: {"network": "resnet20", "batch_size": 32, "gamma": round(0.5 + 0.1 * i, 2)}),
        ("/api/batchnorm (resnet20, a new batch of 64)",
         lambda i: {"network": "resnet20", "batch_size": 64, "seed": 100 + i}),
        ("/api/gradient-flow (depth 20, batch 8, 16x16, new seed)", lambda i: {"depth": 20, "seed": 1000 + i}),
        ("/api/gradient-flow (depth 56, batch 8, 16x16, new seed)", lambda i: {"depth": 56, "seed": 1000 + i}),
        ("/api/gradient-flow (depth 110, batch 8, 16x16, new seed)", lambda i: {"depth": 110, "seed": 1000 + i}),
        ("/api/runs", lambda i: {}),
    ]
    if run:
        cases.append((f"/api/runs/{run}", lambda i: {}))
    rows = []
    for label, vary in cases:
        path = label.split(" ")[0]
        url = lambda params: base.rstrip("/") + urllib.parse.quote(path) + (  # noqa: E731
            "?" + urllib.parse.urlencode(params) if params else "")
        cold = _get(url(vary(-1)))  # the first request of its kind (i = -1: parameters no warm call repeats)
        warm = [_get(url(vary(i))) for i in range(repeats)]
        rows.append({"endpoint": label, "cold_ms": cold, "warm_median_ms": statistics.median(warm),
                     "warm_max_ms": max(warm)})
    return rows


def browser_latencies(base: str, repeats: int) -> dict:
    """First paint, and per panel the median time from a control's move to the redrawn result."""
    from cnnlab.explore.browser import chromium_context

    wait_ready = ("([id, v]) => { const s = document.getElementById(id);"
                  " return s.dataset.state === 'ready' && Number(s.dataset.version || 0) > v; }")
    out = {"first_paint_ms": [], "architectures_ready_ms": [], "panels": {}}
    with chromium_context() as context:
        for _ in range(repeats):
            page = context.new_page()
            start = time.perf_counter()
            page.goto(base + "#architectures")
            page.wait_for_function(wait_ready, arg=["architectures", 0], timeout=120_000)
            out["architectures_ready_ms"].append((time.perf_counter() - start) * 1000)
            paint = page.evaluate("performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null")
            out["first_paint_ms"].append(paint)
            page.close()
        moves = {
            "augmentation": ("#aug-count", [4, 8, 12, 16]),
            "batchnorm": ("#bn-gamma", [0.5, 1.5, 2.0, 2.5]),
            "gradient-flow": ("#gf-depth", [26, 32, 38, 44, 50, 56, 62]),  # each a new depth: computed, not cached
        }
        page = context.new_page()
        for panel, (selector, values) in moves.items():
            page.goto(base + "#" + panel)
            page.wait_for_function(wait_ready, arg=[panel, 0], timeout=120_000)
            times = []
            for i in range(repeats):
                version = int(page.locator(f"#{panel}").get_attribute("data-version"))
                start = time.perf_counter()
                page.locator(selector).evaluate(
                    "(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); }",
                    str(values[i % len(values)]))
                page.wait_for_function(wait_ready, arg=[panel, version], timeout=120_000)
                # The page waits 150 ms after the last slider event before it asks (debounce): not the server's time.
                times.append((time.perf_counter() - start) * 1000 - 150)
            out["panels"][panel] = statistics.median(times)
        page.goto(base + "#runs")
        page.wait_for_function(wait_ready, arg=["runs", 0], timeout=120_000)
        rows = page.locator("#runs-list tbody tr").all()
        times = []
        for i in range(min(repeats, 2 * len(rows))):
            version = int(page.locator("#runs").get_attribute("data-version"))
            start = time.perf_counter()
            rows[i % len(rows)].locator("td").nth(1).click()
            page.wait_for_function(wait_ready, arg=["runs", version], timeout=120_000)
            times.append((time.perf_counter() - start) * 1000)
        if times:
            out["panels"]["runs"] = statistics.median(times)
        page.goto(base + "#architectures")
        page.wait_for_function(wait_ready, arg=["architectures", 0], timeout=120_000)
        names = ["resnet50", "vgg16", "densenet121", "mobilenet_v2", "resnet20", "googlenet", "convnext_tiny"]
        times = []
        for i in range(repeats):
            version = int(page.locator("#architectures").get_attribute("data-version"))
            start = time.perf_counter()
            page.evaluate("name => showModel(name)", names[i % len(names)])
            page.wait_for_function(wait_ready, arg=["architectures", version], timeout=120_000)
            times.append((time.perf_counter() - start) * 1000)
        out["panels"]["architectures"] = statistics.median(times)
        page.close()
    out["first_paint_ms"] = statistics.median([p for p in out["first_paint_ms"] if p is not None])
    out["architectures_ready_ms"] = statistics.median(out["architectures_ready_ms"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="benchmarks/cpu-runs", help="the runs folder shown")
    parser.add_argument("--repeats", type=int, default=9, help="warm requests per endpoint (median quoted)")
    parser.add_argument("--no-browser", action="store_true", help="endpoints only")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    from cnnlab import __version__
    from cnnlab.explore.app import create_app
    from cnnlab.explore.server import ServerThread

    app = create_app(runs=args.runs)
    runs = app.state.runs.names()
    print(f"cnnlab {__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"image sources: {', '.join(app.state.images.names())}; runs under {args.runs}: {len(runs)}")
    with ServerThread(app) as base:
        rows = endpoint_latencies(base, runs[0] if runs else None, args.repeats)
        print(f"\n| endpoint | cold (ms) | warm median (ms) | warm max (ms) |\n| --- | ---: | ---: | ---: |")
        for row in rows:
            print(f"| {row['endpoint']} | {row['cold_ms']:.0f} | {row['warm_median_ms']:.0f} | {row['warm_max_ms']:.0f} |")
        browser = None if args.no_browser else browser_latencies(base, max(args.repeats // 2, 3))
    if browser:
        print(f"\nfirst contentful paint: {browser['first_paint_ms']:.0f} ms (median); architectures panel "
              f"drawn with the zoo: {browser['architectures_ready_ms']:.0f} ms")
        print("\n| panel (in Chromium) | control moved | redraw, median (ms) |\n| --- | --- | ---: |")
        controls = {"architectures": "another model clicked", "augmentation": "image count slider",
                    "batchnorm": "gamma slider", "gradient-flow": "depth slider (two backward passes)",
                    "runs": "another run clicked"}
        for panel, ms in browser["panels"].items():
            print(f"| {panel} | {controls[panel]} | {ms:.0f} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"endpoints": rows, "browser": browser}, handle, indent=2)


if __name__ == "__main__":
    main()
