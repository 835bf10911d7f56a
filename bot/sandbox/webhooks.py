"""Signed webhook requests, made the way Twilio makes them."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import urllib3
from twilio.request_validator import RequestValidator

WEBHOOK_TIMEOUT_SECONDS = 15.0  # Twilio gives up on a webhook after 15 s
USER_AGENT = "TwilioProxy/1.1"

# urllib3 rather than requests: status callbacks are the sandbox's hottest path, and urllib3's
# thread-safe pool costs a fraction of a requests.Session per call.
_pool = urllib3.PoolManager(maxsize=16, block=False, retries=False)


class WebhookError(Exception):
    """The webhook's URL could not be reached or did not answer in time."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class WebhookResponse:
    status: int
    text: str
    content_type: str


def sign(auth_token: str, url: str, params: dict[str, str]) -> str:
    """The X-Twilio-Signature Twilio would send with `params` posted to `url`."""
    return RequestValidator(auth_token).compute_signature(url, params)


def post_signed(
    url: str,
    params: dict[str, str],
    *,
    auth_token: str,
    timeout: float = WEBHOOK_TIMEOUT_SECONDS,
) -> WebhookResponse:
    """POST `params` form-encoded to `url`, signed; WebhookError when nothing answers."""
    headers = {
        "X-Twilio-Signature": sign(auth_token, url, params),
        "User-Agent": USER_AGENT,
        "Accept": "*/*",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    try:
        response = _pool.request(
            "POST", url, body=urlencode(params), headers=headers, timeout=timeout
        )
    except urllib3.exceptions.NewConnectionError:  # first: urllib3 files it under timeouts too
        raise WebhookError("nothing accepted the connection: is the bot running?") from None
    except urllib3.exceptions.TimeoutError:
        raise WebhookError(f"no answer within {timeout:g} seconds") from None
    except urllib3.exceptions.HTTPError as exc:
        raise WebhookError(str(exc)) from None
    return WebhookResponse(
        status=response.status,
        text=response.data.decode("utf-8", errors="replace"),
        content_type=response.headers.get("Content-Type", ""),
    )
