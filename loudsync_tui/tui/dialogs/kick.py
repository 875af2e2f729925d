"""The kick confirmation: kick, kick and ban the address too, or cancel."""

from __future__ import annotations

import ipaddress
from typing import Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from loudsync_tui.text import printable

KickChoice = Literal["kick", "ban-address"]


class KickDialog(ModalScreen[KickChoice | None]):
    """A kick always bans the device id; banning the address is a separate choice because
    it also keeps out anyone else behind it (a shared machine, a NAT)."""

    BINDINGS = [
        Binding("y", "answer('kick')", "Kick"),
        Binding("a", "answer('ban-address')", "Kick + ban address"),
        Binding("n", "cancel", "Cancel"),
        Binding("escape", "cancel", "Cancel", show=False),
    ]

    def __init__(self, name: str, address: str = "", sharing: int = 1) -> None:
        """`address`: the IP the member is at ("" if unknown: no address ban offered);
        `sharing`: how many members are connected from that address now, this one included."""
        super().__init__(classes="dialog-screen")
        self.member_name = name
        self.address = address
        self.sharing = sharing

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            # The name is the guest's own choice: literal text, never markup.
            yield Static(Text(f"Kick {printable(self.member_name)}?"), classes="dialog-title")
            yield Static(
                Text("They leave the session and their device cannot rejoin it."),
                classes="dialog-detail",
            )
            if self.address:
                yield Static(ban_warning(self.address, self.sharing), id="kick-ban-warning")
            keys = Text.assemble(("y", "bold"), " kick    ")
            if self.address:
                keys.append_text(Text.assemble(("a", "bold"), f" kick and ban {self.address}    "))
            keys.append_text(Text.assemble(("n", "bold"), " / ", ("Esc", "bold"), " no"))
            yield Static(keys, classes="dialog-keys")
        yield Footer()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Without a known address there is nothing to ban beyond the device.
        return bool(self.address) or parameters != ("ban-address",)

    def action_answer(self, choice: KickChoice) -> None:
        self.dismiss(choice)

    def action_cancel(self) -> None:
        self.dismiss(None)


def ban_warning(address: str, sharing: int) -> Text:
    """What banning `address` keeps out besides this member: a ban is per IP, so everyone
    on this machine (loopback) or behind the same router (a NAT) is banned with them."""
    try:
        loopback = ipaddress.ip_address(address).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        text = Text(f"{address} is this machine: banning it keeps out every guest started here.")
    else:
        text = Text(f"Banning {address} keeps out any device there (a shared machine, a NAT).")
    text.stylize("dim")
    others = sharing - 1
    if others > 0:
        members = "member is" if others == 1 else "members are"
        text.append(
            f"\n{others} other {members} connected from {address} now: "
            f"{'it' if others == 1 else 'they'} would be banned too.",
            style="bold yellow",
        )
    return text
