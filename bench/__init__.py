"""Benchmarks: the real bot against the simulator and the fake Discord (see each module's docstring)."""
