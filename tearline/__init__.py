"""Tearline: a scoped intelligence exchange for partners who do not trust each other."""

__version__ = "0.1.0"
