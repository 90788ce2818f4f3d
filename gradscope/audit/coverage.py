"""What an audit examined and what it did not: its status, for the exit code and ``--json``.

An audit without findings means "healthy" only if it looked. :class:`Coverage` records which
static rules ran on how many layers, how many probe steps ran on which data and which layers the
probe recorded, and, for everything left out, why. Its :attr:`~Coverage.status` is one of
:data:`STATUSES`:

- ``"examined"``: static rules and the probe ran;
- ``"static_only"``: only static rules ran, as asked (``--steps 0``);
- ``"probe_not_run"``: the probe was asked for but could not run (a model Keras cannot rebuild
  or copy, synthetic inputs the model does not take); the static findings stand;
- ``"not_examined"``: nothing was examined: no probe, and no layer the static rules could read.

Example:
    >>> result = audit("model.keras")  # doctest: +SKIP
    >>> result.coverage.status, result.coverage.to_json()["examined"]["probe"]["steps"]
    ... # doctest: +SKIP
    ('examined', 8)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from gradscope.data.store import Run
from gradscope.model.spec import ModelSpec

AuditStatus = Literal["examined", "static_only", "probe_not_run", "not_examined"]
#: Every status, from the most to the least examined.
STATUSES: tuple[AuditStatus, ...] = ("examined", "static_only", "probe_not_run", "not_examined")
#: Where the probe's data came from: the user's arrays or gradscope's synthetic inputs.
ProbeData = Literal["given", "synthetic"]


@dataclass(frozen=True)
class Coverage:
    """What one audit examined.

    Attributes:
        static_rules: the static rules that ran (finding kinds), in order.
        static_layers: the layers of the model description the static rules read.
        steps_requested: probe steps asked for (0: static rules only).
        steps_run: probe steps recorded.
        probe_data: the probe's data, or None without a probe.
        probe_layers: layers whose gradients the probe recorded.
        unrecorded_layers: layers with weights the probe did not record (frozen, or not
            watched), so no run detector judged them.
        probe_error: why the probe did not run, if it was asked for and did not.
    """

    static_rules: tuple[str, ...]
    static_layers: tuple[str, ...]
    steps_requested: int
    steps_run: int = 0
    probe_data: ProbeData | None = None
    probe_layers: tuple[str, ...] = ()
    unrecorded_layers: tuple[str, ...] = ()
    probe_error: str | None = None

    @classmethod
    def of(
        cls,
        spec: ModelSpec,
        static_rules: tuple[str, ...],
        steps: int,
        run: Run | None,
        synthetic: bool,
        probe_error: str | None,
    ) -> Coverage:
        """The coverage of an audit from its parts.

        Args:
            spec: the model description the static rules read.
            static_rules: the rules that ran.
            steps: probe steps asked for.
            run: the probe's run, or None.
            synthetic: the probe trained on synthetic data.
            probe_error: why the probe did not run, or None.

        Returns:
            The :class:`Coverage`.

        Example:
            >>> Coverage.of(spec, ("missing_clipping",), 0, None, True, None).status
            ... # doctest: +SKIP
            'static_only'
        """
        layers = tuple(layer.name for layer in spec.layers)
        if run is None:
            return cls(static_rules, layers, steps, probe_error=probe_error)
        meta = run.meta.layers
        return cls(
            static_rules,
            layers,
            steps,
            steps_run=len(run.records),
            probe_data="synthetic" if synthetic else "given",
            probe_layers=tuple(x.name for x in meta if x.watched),
            unrecorded_layers=tuple(x.name for x in meta if not x.watched and x.params > 0),
        )

    @property
    def status(self) -> AuditStatus:
        """How much was examined (see the module docstring)."""
        if self.steps_run > 0:
            return "examined"
        if not self.static_layers:
            return "not_examined"
        return "static_only" if self.steps_requested == 0 else "probe_not_run"

    @property
    def complete(self) -> bool:
        """True if everything asked for was examined: an audit without findings is a pass."""
        return self.status in ("examined", "static_only")

    def not_examined(self) -> list[dict[str, Any]]:
        """What the audit left out, and why, one entry per part.

        Returns:
            ``{"what": "probe" | "static_rules" | "layers", "reason": ..., ["layers": [...]]}``
            entries; empty when everything asked for was examined.

        Example:
            >>> coverage.not_examined()  # doctest: +SKIP
            [{'what': 'probe', 'reason': "Keras could not rebuild ..."}]
        """
        out: list[dict[str, Any]] = []
        if not self.static_layers:
            out.append({"what": "static_rules", "reason": "the model description lists no layers"})
        if self.steps_requested > 0 and self.steps_run == 0:
            out.append({"what": "probe", "reason": self.probe_error or "the probe did not run"})
        if self.unrecorded_layers:
            out.append(
                {
                    "what": "layers",
                    "layers": list(self.unrecorded_layers),
                    "reason": "the probe recorded no gradient for them (frozen or not watched)",
                }
            )
        return out

    def summary_line(self) -> str:
        """One sentence saying what was examined, for the text output.

        Returns:
            E.g. ``"Examined: 4 static rules on 12 layers; probe: 8 steps on synthetic data,
            5 layers recorded."``

        Example:
            >>> coverage.summary_line()  # doctest: +SKIP
            'Examined: 4 static rules on 3 layers; probe: not run.'
        """
        rules = f"{len(self.static_rules)} static rules on {len(self.static_layers)} layers"
        if self.steps_run:
            probe = (
                f"probe: {self.steps_run} steps on {self.probe_data} data, "
                f"{len(self.probe_layers)} layers recorded"
            )
        elif self.steps_requested:
            probe = "probe: not run"
        else:
            probe = "probe: not asked for (--steps 0)"
        return f"Examined: {rules}; {probe}."

    def to_json(self) -> dict[str, Any]:
        """The ``status``, ``examined`` and ``not_examined`` fields of ``audit --json``.

        Returns:
            ``{"status", "examined": {"static_rules", "layers", "probe": {"steps",
            "steps_requested", "data", "layers"}}, "not_examined": [...]}``.

        Example:
            >>> coverage.to_json()["status"]  # doctest: +SKIP
            'probe_not_run'
        """
        return {
            "status": self.status,
            "examined": {
                "static_rules": list(self.static_rules),
                "layers": list(self.static_layers),
                "probe": {
                    "steps": self.steps_run,
                    "steps_requested": self.steps_requested,
                    "data": self.probe_data,
                    "layers": list(self.probe_layers),
                },
            },
            "not_examined": self.not_examined(),
        }


__all__ = ["STATUSES", "AuditStatus", "Coverage", "ProbeData"]
