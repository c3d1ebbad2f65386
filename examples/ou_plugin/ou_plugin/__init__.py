"""`ou`: N independent Ornstein-Uhlenbeck particles beside the exact stationary law of their discrete chain.

The tutorial of docs/writing-a-simulator.md: a simulator that lives in its own package and is found by the engine
through the entry point in pyproject.toml. It reads top-down: `config`, then `sim` (dynamics, theory, the record).
"""

from ou_plugin.sim import SIMULATOR

__all__ = ["SIMULATOR"]
