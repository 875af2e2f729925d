"""Headless `discover` (being built)."""

from __future__ import annotations

import argparse


def run_discover(args: argparse.Namespace) -> int:
    del args
    return 2
