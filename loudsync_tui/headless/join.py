"""Headless `join` (being built)."""

from __future__ import annotations

import argparse


def run_join(args: argparse.Namespace) -> int:
    del args
    return 2
