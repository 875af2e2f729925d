"""Headless `host` (being built)."""

from __future__ import annotations

import argparse


def run_host(args: argparse.Namespace) -> int:
    del args
    return 2
