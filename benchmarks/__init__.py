"""luabridge's benchmark suite: ``python -m benchmarks [--json PATH] [--quick]``.

:mod:`~benchmarks.figures` measures each figure, ours against its baseline in the same run and
interleaved (:mod:`~benchmarks.timing`), against what :mod:`~benchmarks.fixtures` provides: simulators,
bridges and bare Lua runtimes. ``__main__`` prints the table and writes the JSON.
"""
