"""One line at the top: the app, where you are, and who you are.

Textual's Header would do, but it mounts its parts asynchronously and a screen that
is popped at once (a refused join) can trip it; this line has no parts.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class TitleBar(Static):
    def show(self, where: str, who: str) -> None:
        line = Text.assemble(("LOUDSYNC", "bold"), "  ", where)
        line.append(f"  you: {who}", style="dim")
        self.update(line)
