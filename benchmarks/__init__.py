"""Side-by-side overhead measurements for tracing_app: ``python -m benchmarks [--quick] [--json PATH]``.

Each section lives in its own module and returns a :class:`benchmarks.report.Section`; the command prints
every section as a markdown table and writes all figures as JSON. Benchmarks never assert timings: the
targets are checked and reported, so a slow machine gives a readable answer instead of a red build.
"""
