"""Emoscope: the Flask service (this package) and its analysis engine (``api.engine``)."""
