"""Which of Grappler's graph rewrites a traced function gets, on this thread.

Grappler optimises a ``tf.function`` the first time it is called. For a function that runs
rarely, or whose graph is large, that optimisation can cost more than it saves. TensorFlow keeps
function-call options per thread in its eager context; inside these context managers, this
thread's calls are instantiated and run with other rewriter options.

- :func:`no_graph_rewrites`: no Grappler at all, for the audit probe's 8 steps.
- :func:`lean_graph_rewrites`: the rewrites that pay on a large model's recorded step, for
  GradScope's instrumented function from :data:`LEAN_FROM_VARIABLES` watched variables.
  Measured (reports/benchmarks.md, session 7) on Grappler's own per-pass log of ResNet-50's
  recorded step: 5.5 s in all, of which the remapper 1.05 s, TFG 1.0 s, constant folding 0.85 s,
  the memory optimizer 0.59 s, the layout optimizer 0.40 s, and each iterated pass twice. The
  remapper's fusions are what keep peak memory down (without any Grappler: +95–130 MiB peak RSS).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

#: Watched variables from which GradScope's recorded step gets :func:`lean_graph_rewrites`.
#: Above: ResNet-50 (214 variables) and a 12-block encoder (197) instantiate it 2.3–2.8 s faster
#: and run it as fast (0.999×), with the same peak memory. Below, Grappler costs a fraction of a
#: second and the MLP (22) ran its lean step 1–3 % slower: below the bound nothing changes.
LEAN_FROM_VARIABLES = 100


@contextlib.contextmanager
def _call_options(edit: Callable[[Any], None]) -> Iterator[None]:
    # The thread's current options, edited: a user's own rewriter settings are kept.
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.eager import context

    ctx = context.context()
    saved = ctx.function_call_options
    config = config_pb2.ConfigProto()
    config.ParseFromString(saved.config_proto_serialized)
    edit(config.graph_options.rewrite_options)
    ctx.function_call_options = context.FunctionCallOptions(saved.executor_type, config)
    try:
        yield
    finally:
        ctx.function_call_options = saved


def no_graph_rewrites() -> contextlib.AbstractContextManager[None]:
    """Runs this thread's function calls without Grappler inside the block.

    Returns:
        A context manager; the previous call options are restored on exit.

    Example:
        >>> with no_graph_rewrites():  # doctest: +SKIP
        ...     step(iterator)
    """

    def edit(options: Any) -> None:
        options.disable_meta_optimizer = True

    return _call_options(edit)


@functools.cache
def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


def lean_graph_rewrites() -> contextlib.AbstractContextManager[None]:
    """Runs this thread's function calls with Grappler's rewrites that pay on large graphs.

    Kept: the remapper (fused kernels, and the memory they save), constant folding, the
    arithmetic and dependency optimizers and pruning, in one pass instead of two. Left out: the
    TFG pipeline, common-subgraph elimination, the loop, function, shape and implementation-
    selector passes; on a machine without a GPU also the layout and memory optimizers (which
    serve GPUs: kept there, unmeasured).

    Returns:
        A context manager; the previous call options are restored on exit.

    Example:
        >>> with lean_graph_rewrites():  # doctest: +SKIP
        ...     step(iterator)
    """
    from tensorflow.core.protobuf import rewriter_config_pb2

    config = rewriter_config_pb2.RewriterConfig
    off = [
        "common_subgraph_elimination",
        "loop_optimization",
        "function_optimization",
        "shape_optimization",
        "implementation_selector",
    ]
    gpu = _has_gpu()

    def edit(options: Any) -> None:
        options.meta_optimizer_iterations = config.ONE
        options.disable_tfg_optimizer = True
        for name in off if gpu else [*off, "layout_optimizer"]:
            setattr(options, name, config.OFF)
        if not gpu:
            options.memory_optimization = config.NO_MEM_OPT

    return _call_options(edit)
