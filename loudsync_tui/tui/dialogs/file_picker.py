"""`o`: the music picker. Folders and audio files only; Enter queues what is under the
cursor (a file, or a whole folder) and the picker stays open for more; Esc closes.

The first entry is this machine's own sound (whatever its apps play), queued as the
path `system`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Footer, OptionList, Static
from textual.widgets.option_list import Option

from loudsync_tui.audio.source import AUDIO_SUFFIXES, SYSTEM_SOURCE
from loudsync_tui.text import printable


def start_folder(home: Path | None = None) -> Path:
    """The user's Music folder if there is one, else their home."""
    home = home or Path.home()
    music = home / "Music"
    return music if music.is_dir() else home


class MusicTree(DirectoryTree):
    """Folders and audio files, no hidden entries; Right opens a folder, Left closes it."""

    BINDINGS = [
        Binding("right", "open_folder", "Open folder", show=False),
        Binding("left", "close_folder", "Close folder", show=False),
    ]
    auto_expand = False  # Enter queues a folder; Space or Right opens it
    # Plain symbols: a folder emoji is a box in many SSH terminals' fonts.
    ICON_NODE = "▸ "
    ICON_NODE_EXPANDED = "▾ "
    ICON_FILE = "♪ "

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        for path in paths:
            if path.name.startswith("."):
                continue
            try:
                if path.is_dir() or path.suffix.lower() in AUDIO_SUFFIXES:
                    yield path
            except OSError:  # unreadable entries are left out, not an error
                continue

    def action_open_folder(self) -> None:
        node = self.cursor_node
        if node is not None and node.allow_expand and not node.is_expanded:
            node.expand()

    def action_close_folder(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.is_expanded:
            node.collapse()
        elif node.parent is not None and node.parent is not self.root:
            self.move_cursor(node.parent)


class FilePicker(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("backspace", "parent", "Up a folder"),
    ]

    def __init__(self, folder: Path, add: Callable[[list[str]], None]) -> None:
        super().__init__(classes="dialog-screen")
        self.folder = folder
        self._add = add

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog picker"):
            yield Static("Add music", classes="dialog-title")
            yield OptionList(Option("♪ This machine's sound", id=SYSTEM_SOURCE), id="picker-system")
            yield Static(self._folder_line(), id="picker-folder", classes="dialog-detail")
            yield MusicTree(self.folder, id="picker-tree")
            yield Static(
                "Enter adds a file or a whole folder · Space opens a folder · "
                "Backspace goes up · Esc closes",
                id="picker-hint",
                classes="dialog-detail",
            )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(MusicTree).focus()

    def _folder_line(self) -> Text:
        return Text.assemble(("in ", "dim"), printable(str(self.folder)))

    def _added(self, path: str, what: str) -> None:
        self._add([path])
        self.query_one("#picker-hint", Static).update(
            Text.assemble(("Added ", "green"), (printable(what), "bold"), "; Esc closes")
        )

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        self._added(str(event.path), event.path.name)

    def on_directory_tree_directory_selected(self, event: DirectoryTree.DirectorySelected) -> None:
        event.stop()
        self._added(str(event.path), f"{event.path.name}/")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._added(SYSTEM_SOURCE, "this machine's sound")

    def action_parent(self) -> None:
        parent = self.folder.parent
        if parent != self.folder:
            self.folder = parent
            self.query_one(MusicTree).path = parent
            self.query_one("#picker-folder", Static).update(self._folder_line())

    def action_close(self) -> None:
        self.dismiss(None)
