"""Modes without a screen: `host --headless`, `join --headless`, `discover`."""
