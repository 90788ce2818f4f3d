"""The demo's building blocks: data, models and the ratio it reports."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_runs import dense, make_run

from gradscope.demo import (
    first_last_ratio,
    healthy_model,
    load_digits_data,
    median_grad_norms,
    sick_model,
)


def test_digits_are_standardized_and_complete() -> None:
    x, y = load_digits_data()
    assert x.shape == (1797, 64) and x.dtype == np.float32 and y.dtype == np.int32
    assert set(np.unique(y)) == set(range(10))
    varying = x.std(axis=0) > 0
    assert np.allclose(x.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(x[:, varying].std(axis=0), 1, atol=1e-4)
    assert np.all(x[:, ~varying] == 0)  # constant pixels stay 0, not NaN


def test_models_are_the_chapter_pair() -> None:
    sick, healthy = sick_model(depth=4, width=8), healthy_model(depth=4, width=8)
    for model, act, init in ((sick, "sigmoid", "GlorotUniform"), (healthy, "relu", "HeNormal")):
        hidden, out = model.layers[:-1], model.layers[-1]
        assert len(hidden) == 4 and all(layer.units == 8 for layer in hidden)
        assert {layer.activation.__name__ for layer in hidden} == {act}
        assert {type(layer.kernel_initializer).__name__ for layer in hidden} == {init}
        assert out.units == 10 and out.activation.__name__ == "softmax"
        assert model.input_shape == (None, 64)


def test_ratio_and_medians_from_a_known_run(tmp_path) -> None:
    # 8 records: the ratio takes the medians of the last half (steps 4-7), per weight.
    norms = {
        "a": [9.0, 9.0, 9.0, 9.0, 1e-6, 3e-6, 2e-6, 4e-6],
        "b": [1.0, 1.0, 1.0, 1.0, 0.1, 0.2, 0.3, 0.4],
    }
    layers = [dense("a", params=400), dense("frozen", trainable=False), dense("b", params=100)]
    run = make_run(
        tmp_path / "run",
        layers,
        lambda s: {n: {"grad_norm": norms[n][s]} for n in ("a", "b")},
        steps=8,
    )
    # frozen layers are not watched; the depth profile is the median over the whole run
    assert median_grad_norms(run) == {
        "a": float(np.median(norms["a"])),
        "b": float(np.median(norms["b"])),
    }
    expected = (np.median(norms["a"][4:]) / np.sqrt(400)) / (np.median(norms["b"][4:]) / 10.0)
    assert first_last_ratio(run) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(2.5e-6 / 20 / 0.025)  # 5e-6, by hand


def test_demo_default_output_is_git_ignored() -> None:
    """The quickstart (`gradscope demo`, no options) must leave a clone's `git status` clean."""
    import shutil
    import subprocess
    from pathlib import Path

    import pytest
    import typer.main

    from gradscope.cli import app

    root = Path(__file__).resolve().parents[1]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    demo = typer.main.get_command(app).commands["demo"]
    out = next(p.default for p in demo.params if p.name == "out")
    for name in ("report.html", "deep_sigmoid.keras", "before/meta.json", "trials/x/stats.jsonl"):
        path = Path(out) / name
        ignored = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=root, check=False)
        assert ignored.returncode == 0, f"{path} would show in git status"
    tracked = subprocess.run(
        ["git", "ls-files", str(out)], cwd=root, capture_output=True, text=True, check=True
    )
    assert tracked.stdout == "", "the demo's default output directory holds committed files"
