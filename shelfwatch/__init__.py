"""Shelfwatch: keep shelves full and loyal members happy."""

__version__ = "0.1.0"
