"""Serving: the HTTP API, online fold-in of feedback, cold start, explanations, a web page.

``lgrec serve --model DIR`` runs :func:`lgrec.serve.app.create_app` under uvicorn;
``lgrec retrain`` refits a bundle on its training data plus the stored feedback
(:func:`lgrec.serve.retrain.retrain`). Imports are lazy so ``import lgrec.serve`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ServeSettings", "ServeState", "create_app", "retrain"]


def __getattr__(name: str) -> Any:
    if name in ("ServeSettings", "create_app"):
        from lgrec.serve import app

        return getattr(app, name)
    if name == "ServeState":
        from lgrec.serve.state import ServeState

        return ServeState
    if name == "retrain":
        from lgrec.serve.retrain import retrain

        return retrain
    raise AttributeError(f"module 'lgrec.serve' has no attribute {name!r}")
