"""Lazy exports: light modules load without TensorFlow; public names still resolve."""

from __future__ import annotations

import subprocess
import sys

import pytest

import gradscope
import gradscope.fix


def test_light_modules_do_not_import_tensorflow() -> None:
    # A fresh process: the test session itself has TensorFlow loaded already.
    code = (
        "import sys, gradscope, gradscope.fix, gradscope.remedies, gradscope.findings, "
        "gradscope.detect, gradscope.data, gradscope.render.html, gradscope.render.terminal; "
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_resolve_and_are_listed() -> None:
    from gradscope.collect.callback import GradScope
    from gradscope.fix.auto import auto_fix

    assert gradscope.GradScope is GradScope
    assert gradscope.fix.auto_fix is auto_fix
    assert {"GradScope", "load_run", "Severity"} <= set(dir(gradscope))
    assert set(gradscope.fix.__all__) <= set(dir(gradscope.fix))


def test_unknown_name_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'gradscope.fix' has no attribute 'nope'"):
        _ = gradscope.fix.nope
