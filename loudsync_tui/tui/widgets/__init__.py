"""Widgets that draw one slice of the store each."""
