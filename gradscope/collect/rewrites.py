"""Running a traced function without Grappler's graph rewrites, on this thread.

Grappler optimises a ``tf.function`` the first time it is called. For a function that runs
rarely, that optimisation can cost more than it saves: the audit probe's 8 steps. (GradScope's
recorded step on ResNet-50 traced 4.5 s faster without it, but peak memory rose by 340 MiB:
reports/benchmarks.md, session 6; not used there.) TensorFlow keeps function-call options per
thread in its eager context. Inside :func:`no_graph_rewrites`, this thread's calls are
instantiated and run without the meta optimizer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def no_graph_rewrites() -> Iterator[None]:
    """Runs this thread's function calls without Grappler inside the block.

    Returns:
        A context manager; the previous call options are restored on exit.

    Example:
        >>> with no_graph_rewrites():  # doctest: +SKIP
        ...     step(iterator)
    """
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.eager import context

    ctx = context.context()
    saved = ctx.function_call_options
    config = config_pb2.ConfigProto()
    config.ParseFromString(saved.config_proto_serialized)
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    ctx.function_call_options = context.FunctionCallOptions(saved.executor_type, config)
    try:
        yield
    finally:
        ctx.function_call_options = saved
