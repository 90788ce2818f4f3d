"""The "gradscope" TensorBoard plugin: serves the dashboard's module and its JSON routes.

Routes (under ``/data/plugin/gradscope``): ``/index.js`` (the ES module TensorBoard loads in an
iframe), ``/runs`` (the runs under ``--logdir`` in creation order, fix trials apart, with the
palette shared with the HTML report) and ``/data?run=NAME`` (one run's payload, with the same
notes on dead/saturated units as the report).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from tensorboard.backend import http_util
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from gradscope.data.store import RunFormatError
from gradscope.errors import GradscopeInputError
from gradscope.render.run_figures import fraction_notes
from gradscope.render.tb_plugin.listing import listing_json
from gradscope.render.tb_plugin.runs import PayloadCache, discover_runs

PLUGIN_NAME = "gradscope"
STATIC_DIR = Path(__file__).parent / "static"

#: A WSGI application as TensorBoard's plugin routes expect.
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _json(request: wrappers.Request, obj: Any, code: int = 200) -> wrappers.Response:
    # allow_nan=False: the payload is already strict JSON; anything else is a bug to surface.
    body = json.dumps(obj, allow_nan=False, separators=(",", ":"))
    return http_util.Respond(request, body, "application/json", code=code)


class GradscopePlugin(base_plugin.TBPlugin):
    """TensorBoard dashboard of gradscope runs: gradient heatmap, dead/saturated units, findings.

    Args:
        context: TensorBoard's plugin context; only ``context.logdir`` is used.

    Example:
        >>> plugin = GradscopePlugin(base_plugin.TBContext(logdir="runs"))  # doctest: +SKIP
        >>> plugin.is_active()  # doctest: +SKIP
        True
    """

    plugin_name = PLUGIN_NAME

    def __init__(self, context: base_plugin.TBContext) -> None:
        self._logdir = context.logdir or ""
        self._cache = PayloadCache()

    def is_active(self) -> bool:
        """Returns True if the log directory holds at least one gradscope run.

        Returns:
            Whether TensorBoard should show the dashboard.
        """
        return bool(self._logdir) and bool(discover_runs(self._logdir))

    def get_plugin_apps(self) -> dict[str, WSGIApp]:
        """Returns the plugin's routes.

        Returns:
            route -> WSGI application.
        """
        return {
            "/index.js": self._serve_js,
            "/runs": self._serve_runs,
            "/data": self._serve_data,
        }

    def frontend_metadata(self) -> base_plugin.FrontendMetadata:
        """Tells TensorBoard to load ``/index.js`` as the dashboard's ES module.

        Returns:
            The frontend metadata.
        """
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name="GradScope")

    @wrappers.Request.application
    def _serve_js(self, request: wrappers.Request) -> wrappers.Response:
        source = (STATIC_DIR / "index.js").read_text(encoding="utf-8")
        return http_util.Respond(request, source, "application/javascript")

    @wrappers.Request.application
    def _serve_runs(self, request: wrappers.Request) -> wrappers.Response:
        return _json(request, listing_json(discover_runs(self._logdir) if self._logdir else {}))

    @wrappers.Request.application
    def _serve_data(self, request: wrappers.Request) -> wrappers.Response:
        name = request.args.get("run")
        if not name:
            return _json(request, {"error": "Missing query parameter 'run'."}, code=400)
        # Only names found under the log directory are served: the query never becomes a path.
        runs = discover_runs(self._logdir) if self._logdir else {}
        if name not in runs:
            return _json(request, {"error": f"No gradscope run named {name!r}."}, code=404)
        try:
            payload = self._cache.get(name, runs[name])
        except (RunFormatError, GradscopeInputError) as err:
            return _json(request, {"error": str(err)}, code=500)
        return _json(request, with_notes(payload))


def with_notes(payload: dict[str, Any]) -> dict[str, Any]:
    """Adds the report's sentences on dead/saturated units to a dashboard payload.

    Args:
        payload: from :func:`~gradscope.render.tb_plugin.runs.dashboard_payload` (not changed:
            it may be cached).

    Returns:
        A copy with ``fraction_notes`` (see :func:`gradscope.render.run_figures.fraction_notes`).

    Example:
        >>> with_notes({"act_layers": [], "layers": []})["fraction_notes"]
        []
    """
    act = payload.get("act_layers") or []
    layers = payload.get("layers") or act

    def floats(key: str) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in payload.get(key) or []], dtype=float)

    notes = fraction_notes(act, floats("dead_frac"), floats("sat_frac"), layers[-1]) if act else ()
    return {**payload, "fraction_notes": list(notes)}
