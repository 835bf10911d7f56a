"""`python -m bot.tools.bench.sandbox_server PORT`: the sandbox provider, as its own process.

Status callbacks are held back (an hour's delay) so the send measurements time the provider's
API alone; the bot's handling of callbacks is web work, measured with the inbound webhooks.
"""

from __future__ import annotations

import sys

from bot.sandbox import serve_sandbox
from bot.settings import Settings

CALLBACK_DELAY_SECONDS = 3600.0


def main(port: int) -> None:
    settings = Settings.from_env()
    serve_sandbox(
        "127.0.0.1",
        port,
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        bot_inbound_url=f"{settings.public_base_url}/twilio/sms",
        bot_number=settings.twilio_from_number,
        callback_delay=CALLBACK_DELAY_SECONDS,
    )


if __name__ == "__main__":
    main(int(sys.argv[1]))
