"""What one sandbox holds: its account, the bot it talks to, messages, faults and callbacks."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app

from bot.sandbox.callbacks import StatusCallbacks
from bot.sandbox.faults import FaultQueue
from bot.sandbox.store import MessageStore

EXTENSION = "tend_sandbox"


@dataclass
class Sandbox:
    """One fake Twilio account with one phone number, wired to one bot."""

    account_sid: str
    auth_token: str
    bot_inbound_url: str
    bot_number: str
    public_url: str | None
    callbacks: StatusCallbacks
    store: MessageStore = field(default_factory=MessageStore)
    faults: FaultQueue = field(default_factory=FaultQueue)

    def close(self) -> None:
        """Stop the callback threads (the Flask app itself holds nothing else)."""
        self.callbacks.close()


def current_sandbox() -> Sandbox:
    """The sandbox behind the app handling the current request."""
    return current_app.extensions[EXTENSION]
