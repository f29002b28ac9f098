"""The package version, kept in one place (pyproject reads the same number)."""

__all__ = ["__version__"]

__version__ = "0.1.0"
