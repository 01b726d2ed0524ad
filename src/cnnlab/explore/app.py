"""The explorer's web application: one static page and the JSON API behind it (FastAPI).

Every number the page draws comes from an endpoint here, and every endpoint from the
library: the zoo registry and ``cnnlab summary``, the augmentation pipeline, real BN
layers, real backward passes, the run folders. Inputs are validated with limits (a
depth of 10,000 is a 422, not a hung server); a user error of the library is a 4xx with
its one-line message, never a traceback.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import AfterValidator

from .. import __version__
from ..errors import CnnlabError, UnknownNameError, first_line
from .architectures import Zoo, cached_summary
from .augment import augment_images, augmentation_controls
from .batchnorm import BatchNormExplorer
from .gradients import MAX_BATCH, MAX_DEPTH, GradientFlow, check_work
from .images import FOLDER_IMAGE_SIZE, ImageSources
from .runs import NoSuchRun, OutsideRoot, RunsFolder

STATIC = Path(__file__).parent / "static"
_SIZES = {"digits": 8, "cifar10": 32, "folder": FOLDER_IMAGE_SIZE}


def _six_n_plus_two(depth: int) -> int:
    if (depth - 2) % 6:
        raise ValueError(f"depth must be 6n+2 (20, 32, 44, 56, 110), got {depth}")
    return depth


def _input_size(text: str | None) -> tuple[int, int, int] | None:
    if text is None:
        return None
    channels, height, width = (int(v) for v in text.split("x"))
    if not (1 <= channels <= 64 and 1 <= height <= 1024 and 1 <= width <= 1024):
        raise ValueError("input must be CxHxW with 1-64 channels and sides of 1-1024 pixels")
    return channels, height, width


ModelName = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="a registered model name")]
Seed = Annotated[int, Query(ge=0, le=2**31 - 1, description="random seed")]


def create_app(runs: str | Path = "runs", data: str | Path | None = None, models: str | None = None) -> FastAPI:
    """The explorer for the run folders under ``runs``, the images of ``data`` (besides the digits
    and CIFAR-10) and the zoo models matching ``models`` (comma-separated globs; all by default)."""
    images = ImageSources(data)
    runs_folder = RunsFolder(runs)
    zoo = Zoo(models)
    batchnorm = BatchNormExplorer(images, runs_folder)
    gradients = GradientFlow(images)

    app = FastAPI(title="cnnlab explorer", version=__version__,
                  description="The lectures' interactive figures computed from cnnlab: the zoo, augmentation, "
                              "batch normalization, gradient flow and training runs.")
    app.state.zoo = zoo
    app.state.images = images
    app.state.runs = runs_folder

    @app.exception_handler(CnnlabError)
    async def library_error(request: Request, error: CnnlabError):
        # Not found: a run, or a model named in the path; an unknown name in a query (an
        # augmentation, a network) is a bad request.
        missing = isinstance(error, NoSuchRun) or (isinstance(error, UnknownNameError)
                                                   and request.url.path.startswith("/api/models/"))
        status = 403 if isinstance(error, OutsideRoot) else 404 if missing else 400
        return JSONResponse({"detail": str(error)}, status_code=status)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception):
        # No traceback goes to the browser; the server's log has it.
        return JSONResponse({"detail": f"internal error: {type(error).__name__}: {first_line(error)}"},
                            status_code=500)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/models", summary="The zoo: depth, params, MACs, reference accuracy, year, Pareto frontiers")
    def models_table() -> dict:
        return {"models": zoo.rows(), "skipped": zoo.skipped}

    @app.get("/api/models/{name}", summary="One model: its metadata, totals and block diagram")
    def model_detail(name: ModelName) -> dict:
        return zoo.detail(name)

    @app.get("/api/models/{name}/summary", summary="cnnlab summary: per-layer params, MACs, memory, receptive field")
    def model_summary(name: ModelName,
                      input: Annotated[str | None, Query(pattern=r"^\d{1,4}x\d{1,4}x\d{1,4}$",
                                                         description="CxHxW, e.g. 3x224x224"),
                                       AfterValidator(_input_size)] = None) -> dict:
        zoo.check(name)
        return cached_summary(name, input)

    @app.get("/api/augment/options", summary="The image sources and each augmentation's parameters")
    def augment_options() -> dict:
        return {"sources": [{**s, "size": _SIZES[s["name"]], "controls": augmentation_controls(_SIZES[s["name"]])}
                            for s in images.describe()],
                "default": images.default()}

    @app.get("/api/augment", summary="Real images, one random draw of an augmentation spec, and the test-time view")
    def augment(spec: Annotated[str, Query(min_length=1, max_length=200,
                                           description="augmentation spec, e.g. crop(pad=4)")],
                source: Annotated[str | None, Query(pattern=r"^(digits|cifar10|folder)$")] = None,
                count: Annotated[int, Query(ge=1, le=32, description="number of images")] = 8,
                image_seed: Seed = 0,
                seed: Annotated[int | None, Query(ge=0, le=2**31 - 1,
                                                  description="the draw's seed (default: a fresh one)")] = None) -> dict:
        return augment_images(images.get(source or images.default()), spec, count, image_seed, seed)

    @app.get("/api/batchnorm/networks", summary="The networks whose BN layers can be explored")
    def batchnorm_networks() -> dict:
        return {"networks": batchnorm.networks()}

    @app.get("/api/batchnorm", summary="A BN layer's input and outputs (train and eval mode), gamma, beta, batch of 1")
    def batchnorm_layer(network: Annotated[str, Query(min_length=1, max_length=300)] = "synthetic",
                        layer: Annotated[str | None, Query(max_length=200, pattern=r"^[A-Za-z0-9_.]+$")] = None,
                        batch_size: Annotated[int, Query(ge=1, le=128)] = 32,
                        gamma: Annotated[float | None, Query(ge=-5, le=5)] = None,
                        beta: Annotated[float | None, Query(ge=-5, le=5)] = None,
                        seed: Seed = 0,
                        shift: Annotated[float, Query(ge=-10, le=10, description="synthetic: mean")] = 2.0,
                        scale: Annotated[float, Query(gt=0, le=10, description="synthetic: spread")] = 3.0,
                        channel: Annotated[int | None, Query(ge=0, le=4096)] = None) -> dict:
        return batchnorm.explore(network, layer, batch_size, gamma, beta, seed, shift, scale, channel)

    @app.get("/api/gradient-flow", summary="Per-layer gradient norms of a plain or residual CIFAR net, one backward pass")
    def gradient_flow(depth: Annotated[int, Query(ge=8, le=MAX_DEPTH), AfterValidator(_six_n_plus_two)] = 20,
                      shortcut: bool = True,
                      batch_size: Annotated[int, Query(ge=1, le=MAX_BATCH)] = 8,
                      image_size: Annotated[int, Query(ge=8, le=32)] = 16,
                      seed: Seed = 0) -> dict:
        try:
            check_work(depth, batch_size, image_size)
        except ValueError as error:  # a limit on the three together, as FastAPI words its own
            raise RequestValidationError([{"type": "value_error", "loc": ("query", "batch_size"),
                                           "msg": str(error), "input": batch_size}]) from None
        return gradients.compute(depth, shortcut, batch_size, image_size, seed)

    @app.get("/api/runs", summary="The run folders under the runs root")
    def runs_list() -> dict:
        return {"root": runs_folder.root.name, "runs": runs_folder.listing()}

    @app.get("/api/runs/{name:path}", summary="One run: curves, report, confusion matrices, diagnose findings")
    def run_detail(name: Annotated[str, PathParam(max_length=500)]) -> dict:
        return runs_folder.detail(name)

    return app
