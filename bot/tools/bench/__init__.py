"""`bot bench`: delivery and webhook throughput measured on this machine, printed as figures.

A benchmark script, not a test: see DESIGN.md, "Speed and scale are shown by a benchmark".
"""

from bot.tools.bench.runner import run_benchmark

__all__ = ["run_benchmark"]
