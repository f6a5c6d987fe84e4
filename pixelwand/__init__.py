"""Pixel Wand: a multi-tenant image/video asset service."""

__version__ = "0.1.0"
