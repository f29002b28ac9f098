"""Mechanism analyses: head roles, lens and direct effects, structural probes, mechanism cards."""

__all__: list[str] = []
