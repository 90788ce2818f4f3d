"""Running a traced function without Grappler's graph rewrites, on this thread.

Grappler optimises a ``tf.function`` the first time it is called. For a function that runs
rarely, that optimisation can cost more than it saves. This applies to the audit probe's 8 steps,
and to the recorded step of a large model, which runs one step in ``freq``. TensorFlow keeps
function-call options per thread in its eager context. Inside :func:`no_graph_rewrites`, this
thread's calls are instantiated and run without the meta optimizer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

#: Watched variables from which GradScope runs its recorded step without Grappler. Measured on
#: both sides (reports/benchmarks.md, session 6). Above: ResNet-50 (214 variables) and a
#: 12-block encoder (197) trace and instantiate it 4.5 s and 3.7 s faster, and run it 0 % and
#: 3 % slower. Below: the benchmark CNN (8 variables) runs it 14 % slower (inlining and fusions
#: lost) and the MLP (22) about as fast. Between 22 and 197 nothing was measured; the bound sits
#: in the gap.
UNOPTIMIZED_FROM_VARIABLES = 100


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
