"""Benchmarks of the monitor against the API Gateway sandbox: ``make bench`` (``python -m bench``).

Nothing here is Lambda code. The sandbox (with moto for CloudWatch) runs in one process
(:mod:`bench.sandbox_host`), each implementation under test in another (:mod:`bench.runner`), so
that the memory measured is the monitor's own; :mod:`bench.run` drives them and
:mod:`bench.report` renders the results. :mod:`bench.fleet` and :mod:`bench.freshness` are the other
two benchmarks of ``make bench``. What they all share (their servers' processes and the protocol
with them, moto in a process of its own, the writer of docs/benchmarks.md) is :mod:`bench.host`.
"""
