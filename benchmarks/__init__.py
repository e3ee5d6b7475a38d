"""Timings of the library and of the paper's models, one module each, run
from the repository's root as ``python -m benchmarks.NAME`` (``--help``
gives a module's arguments).  What they share: :mod:`benchmarks.timing`
(timing calls, the head of a report), :mod:`benchmarks.inputs` (the data
they time on) and :mod:`benchmarks.table7` (Table 7's grid and the
paper's figures)."""
