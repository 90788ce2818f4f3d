"""TensorBoard dashboard plugin "gradscope", registered via the ``tensorboard_plugins`` entry point.

The plugin reads gradscope run directories under TensorBoard's ``--logdir`` directly
(``meta.json``, ``stats.jsonl``, ``findings.json``), so it needs no summaries of its own.
"""
