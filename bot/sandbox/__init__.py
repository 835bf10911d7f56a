"""A local stand-in for Twilio's Messages API, with a web phone to text the bot from."""

from bot.sandbox.app import create_sandbox_app, sandbox_of, serve_sandbox

__all__ = ["create_sandbox_app", "sandbox_of", "serve_sandbox"]
