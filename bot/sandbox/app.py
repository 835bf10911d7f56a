"""Build the sandbox's Flask app, or serve it until interrupted."""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import WSGIRequestHandler, make_server

from bot.sandbox import api, control, phone
from bot.sandbox.callbacks import StatusCallbacks
from bot.sandbox.state import EXTENSION, Sandbox
from bot.sandbox.store import MessageStore
from bot.sandbox.wire import API_VERSION, e164, error_response


def create_sandbox_app(
    *,
    account_sid: str,
    auth_token: str,
    bot_inbound_url: str,
    bot_number: str,
    public_url: str | None = None,
    callback_delay: float = 0.05,
) -> Flask:
    """A Twilio-compatible Messages API and a phone page for one account, wired to one bot.

    Call `sandbox_of(app).close()` when done with it, to stop its status callback threads.
    """
    number = e164(bot_number)
    if number is None:
        raise ValueError(f"bot_number must be a phone number, not {bot_number!r}")
    if not bot_inbound_url.startswith(("http://", "https://")):
        raise ValueError(f"bot_inbound_url must be an http(s) URL, not {bot_inbound_url!r}")
    if callback_delay < 0:
        raise ValueError(f"callback_delay must not be negative, not {callback_delay}")

    app = Flask(__name__)
    store = MessageStore()
    app.extensions[EXTENSION] = Sandbox(
        account_sid=account_sid,
        auth_token=auth_token,
        bot_inbound_url=bot_inbound_url,
        bot_number=number,
        public_url=public_url.rstrip("/") if public_url else None,
        store=store,
        callbacks=StatusCallbacks(store=store, auth_token=auth_token, delay=callback_delay),
    )
    app.register_blueprint(api.bp)
    app.register_blueprint(control.bp)
    app.register_blueprint(phone.bp)

    @app.errorhandler(HTTPException)
    def twilio_shaped_errors(exc: HTTPException) -> Response | HTTPException:
        # Clients of the fake API parse Twilio's JSON errors, even for unknown routes.
        if request.path.startswith(f"/{API_VERSION}/"):
            status = exc.code or 500
            code = 20404 if status == 404 else 20000 + status
            return error_response(status, code, exc.description or exc.name)
        return exc

    return app


class KeepAliveHandler(WSGIRequestHandler):
    """HTTP/1.1, so a client's pooled connections are reused as they would be with Twilio."""

    protocol_version = "HTTP/1.1"


def sandbox_of(app: Flask) -> Sandbox:
    """The sandbox state behind an app made by create_sandbox_app."""
    return app.extensions[EXTENSION]


def serve_sandbox(
    host: str = "127.0.0.1",
    port: int = 5001,
    *,
    account_sid: str,
    auth_token: str,
    bot_inbound_url: str,
    bot_number: str,
    public_url: str | None = None,
    callback_delay: float = 0.05,
) -> None:
    """Serve the sandbox on host:port until interrupted (Ctrl-C)."""
    public = public_url or f"http://{host}:{port}"
    app = create_sandbox_app(
        account_sid=account_sid,
        auth_token=auth_token,
        bot_inbound_url=bot_inbound_url,
        bot_number=bot_number,
        public_url=public,
        callback_delay=callback_delay,
    )
    server = make_server(host, port, app, threaded=True, request_handler=KeepAliveHandler)
    print(f"Twilio sandbox API on {public} (texts go to the bot at {bot_inbound_url})")
    print(f"Phone: {public}/phone")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sandbox_of(app).close()
