"""Test configuration: quiet TensorFlow, two logical CPUs for tf.distribute tests, seeds."""

from __future__ import annotations

import contextlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

import keras
import pytest
import tensorflow as tf

# Two logical CPU devices so MirroredStrategy can be tested without a GPU; this must happen before
# TensorFlow initializes its devices, hence at import time of the test session.
_cpus = tf.config.list_physical_devices("CPU")
with contextlib.suppress(RuntimeError):  # devices already initialized by another plugin
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )


#: Tests left out of the contributor's fast subset (`python -m pytest -m "not slow"`): they start
#: Python processes that import TensorFlow, run the demo, examples or benchmarks, drive Chromium,
#: or train the scenario suite. Listed here, by node-id prefix, so the rule lives in one place;
#: tests that use the README tour are slow too. The full suite (CI) runs everything.
SLOW: tuple[str, ...] = (
    "tests/test_examples.py::test_example_runs_quick",
    "tests/test_benchmarks.py",
    "tests/fix/test_fix_e2e.py",
    "tests/fix/test_search.py::test_nan",
    "tests/fix/test_search.py::test_the_fixed_file",
    "tests/fix/test_search.py::test_dead",
    "tests/fix/test_search.py::test_a_curve_that",
    "tests/detect/test_scenarios.py",
    "tests/detect/test_zoo.py",
    "tests/render/test_html_outputs.py",
    "tests/render/test_browser",
    "tests/test_bad_inputs.py::test_real_process_stderr_is_one_line",
    "tests/collect/test_faults.py::test_interrupted_run_is_marked_when_the_process_exits",
    "tests/e2e/test_cli.py::test_cli_import_is_lazy_and_quiet",
    "tests/e2e/test_cli.py::test_stderr_is_one_line_without_tensorflow_chatter",
    "tests/audit/test_command.py::test_subprocess_bad_input_has_no_traceback",
    "tests/audit/test_custom_objects.py::test_audit_refuses",
    "tests/audit/test_custom_objects.py::test_bad_module",
    # Re-running a script: fits in fresh Python processes (TensorFlow imported each time).
    "tests/collect/test_rerun.py::test_two_processes",
    "tests/collect/test_rerun.py::test_parent_reads_as_its_newest_run",
    "tests/collect/test_rerun.py::test_backup_and_restore_resumed_in_a_new_process",
)


#: Tests spread one by one over pytest-xdist's workers: each shares no fixture, so the longest
#: ones (the examples, the benchmark scripts) run side by side.
SPREAD: tuple[str, ...] = (
    "tests/test_examples.py::test_example_runs_quick",
    "tests/test_benchmarks.py::test_quick_run",
)


#: Tests that form a worker group apart from the rest of their module: node-id prefix -> group
#: name ("" names it after the prefix). They use none of the module fixtures of the other tests,
#: so a long module runs on two or three workers side by side.
SPLIT: dict[str, str] = {
    "tests/detect/test_zoo.py::test_healthy_model_learns": "",
    "tests/detect/test_zoo.py::test_healthy_model_audit": "tests/detect/test_zoo.py::audits",
    "tests/detect/test_zoo.py::test_sick_twin_audit": "tests/detect/test_zoo.py::audits",
    "tests/detect/test_scenarios.py::test_saved_scenario": "",
}


#: Modules that share cached fits (tests/lr_runs.py) run on one worker, so each fit runs once.
SHARED_FITS: tuple[str, ...] = (
    "tests/detect/test_unstable_loss.py",
    "tests/detect/test_slow_convergence.py",
    "tests/render/test_step_size_evidence.py",
)


#: Worker groups handed out first, longest first (by group-name prefix; CPU-seconds measured in
#: a -n0 run on 2026-11-26, after this file's in-process changes). xdist gives a worker its next
#: group while its current one is still running, in collection order (``--no-loadscope-reorder``
#: in pyproject.toml; by default it orders groups by their number of tests, which put the one-test
#: examples, the longest tests, last and queued two or three of them behind each other on one
#: worker: the suite's tail). Every other group keeps its collection order after these.
LONG_FIRST: tuple[str, ...] = (
    "tests/detect/test_zoo.py::test_healthy_model_learns",  # 39 s
    "readme_tour",  # 35
    "tests/collect/test_rerun.py",  # 28
    "tests/test_benchmarks.py::test_quick_run_prints_tables_of_ratios[zoo.py]",  # 24
    "tests/collect/test_callback.py",  # 24
    "tests/detect/test_scenarios.py::test_saved_scenario",  # 22
    "tests/detect/test_scenarios.py",  # 23
    "tests/detect/test_zoo.py::audits",  # 22
    "tests/test_bad_inputs.py",  # 22
    "tests/test_benchmarks.py::test_quick_run_prints_tables_of_ratios[repair.py]",  # 20
    "tests/test_examples.py::test_example_runs_quick[batch_norm]",  # 19
    "tests/render/test_html_outputs.py",  # 18
    "tests/fix/test_search.py",  # 18
    "tests/test_examples.py::test_example_runs_quick[initialization]",  # 16
    "tests/detect/test_zoo.py",  # 15
    "tests/fix/test_fix_e2e.py",  # 14
    "tests/fix/test_operator_layers.py",  # 13 (its --auto search stops at the first candidate)
    "tests/collect/test_custom_step.py",  # 13
    "tests/collect/test_faults.py",  # 13
    "tests/detect/test_embedding.py",  # 12
    "tests/audit/test_custom_objects.py",  # 11 (two of its four CLI runs in-process)
    "tests/audit/test_audit.py",  # 11
    "tests/test_examples.py::test_example_runs_quick[activations]",  # 11
    "tests/test_examples.py::test_example_runs_quick[mirrored_strategy]",  # 11
    "tests/test_examples.py::test_example_runs_quick[optimizers]",  # 11
    "tests/e2e/test_cli.py",  # 10
    "tests/test_examples.py::test_example_runs_quick[gradient_clipping]",  # 10
    "tests/test_benchmarks.py::test_quick_run_prints_tables_of_ratios[large_models.py]",  # 9
    "tests/test_benchmarks.py::test_quick_run_prints_tables_of_ratios[overhead.py]",  # 9
)


def _xdist_group(item: pytest.Item) -> str:
    """The worker group of a test under ``--dist loadgroup``.

    Tests of one module share module/session fixtures (recorded runs, a browser), so a module
    stays on one worker; every user of the README tour joins one group so the tour runs once.
    """
    if "readme_tour" in getattr(item, "fixturenames", ()):
        return "readme_tour"
    if item.nodeid.startswith(SPREAD):
        return item.nodeid
    for prefix, group in SPLIT.items():
        if item.nodeid.startswith(prefix):
            return group or prefix
    if item.nodeid.startswith(SHARED_FITS):
        return "lr_runs"
    return item.nodeid.split("::", 1)[0]


# tryfirst: xdist's worker turns xdist_group marks into node ids in its own modifyitems hook,
# which would otherwise run before this one and never see the groups.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks :data:`SLOW` tests (and the README tour's) ``slow``; groups and orders them."""
    groups: dict[pytest.Item, str] = {}
    for item in items:
        if item.nodeid.startswith(SLOW) or "readme_tour" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
        groups[item] = _xdist_group(item)
        item.add_marker(pytest.mark.xdist_group(groups[item]))

    def rank(item: pytest.Item) -> int:
        return next(
            (i for i, p in enumerate(LONG_FIRST) if groups[item].startswith(p)), len(LONG_FIRST)
        )

    items.sort(key=rank)  # stable: a group's tests stay together and in order


@pytest.fixture(autouse=True)
def _seed() -> None:
    keras.utils.set_random_seed(1234)


@pytest.fixture(scope="session")
def readme_tour(tmp_path_factory: pytest.TempPathFactory):
    """README's runnable tour, run once: (working directory, steps). Starts with the demo."""
    from readme_tour import run_tour

    cwd = tmp_path_factory.mktemp("tour")
    return cwd, run_tour(cwd)
