"""Controls for tests and the benchmark: inject faults, read counters."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from bot.sandbox.faults import FaultError, parse_faults
from bot.sandbox.state import current_sandbox

bp = Blueprint("sandbox_control", __name__, url_prefix="/sandbox")


@bp.post("/faults")
def add_faults() -> Response:
    """Queue faults for the next creates: {"faults": [{"status": 429}, ...], "to": optional}."""
    try:
        faults = parse_faults(request.get_json(silent=True))
    except FaultError as exc:
        response = jsonify({"error": str(exc)})
        response.status_code = 400
        return response
    waiting = current_sandbox().faults.push(faults)
    response = jsonify({"queued": len(faults), "waiting": waiting})
    response.status_code = 201
    return response


@bp.get("/faults")
def list_faults() -> Response:
    """The faults still waiting, in the order creates will meet them."""
    return jsonify({"faults": [f.as_json() for f in current_sandbox().faults.pending()]})


@bp.delete("/faults")
def clear_faults() -> Response:
    """Drop every waiting fault."""
    return jsonify({"cleared": current_sandbox().faults.clear()})


@bp.get("/stats")
def stats() -> Response:
    """Messages stored and status callbacks posted, failed or still ahead."""
    sandbox = current_sandbox()
    return jsonify({"messages": len(sandbox.store), "callbacks": sandbox.callbacks.counts()})
