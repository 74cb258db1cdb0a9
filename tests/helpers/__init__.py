"""Importable test helpers: shared models and data (``from helpers.models import SmoothNet``)."""
