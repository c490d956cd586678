"""The runner: the train loop, device strategies, evaluation, checkpoints, logs, workdir.

It knows no family (methods come through `jaxgen.registry`), and no family
imports it: families import `jaxgen.core` (see docs/architecture.md and
tests/test_imports.py).
"""
