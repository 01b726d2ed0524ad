"""``cnnlab explore``: the lectures' interactive figures, live on the real zoo and real runs, in the browser.

A FastAPI application (:func:`cnnlab.explore.app.create_app`) serves one static page
(plain HTML, CSS and JavaScript with SVG charts, shipped in ``static/``: no CDN, no build
step) and the JSON API it draws from, with five panels: the architectures of the zoo, the
augmentation gallery, batch normalization, gradient flow through plain and residual nets,
and training runs. :func:`serve` runs it with uvicorn on localhost. FastAPI and uvicorn
come with the ``explore`` extra.
"""
from .server import DEFAULT_PORT, choose_port, serve

__all__ = ["DEFAULT_PORT", "choose_port", "serve"]
