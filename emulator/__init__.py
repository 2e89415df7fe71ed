"""A standalone NemoVideo-compatible backend: a second, independent reading of nemo-api.md.

Imports nothing from core/, api/, worker/ or cli/. Start it with ``python -m emulator``.
"""

from emulator.config import EmulatorConfig, FaultProfile, load_profile

__all__ = ["EmulatorConfig", "FaultProfile", "load_profile"]
