"""The send gate, right before each provider call, and a sending worker's heartbeat.

The gate is one conditional statement per message, in a transaction the caller holds open
through the provider call; it is built once, so a message costs its execution only.

On PostgreSQL it is a SELECT that locks the delivery row as an UPDATE would (FOR NO KEY
UPDATE) and its participant FOR SHARE, and writes nothing: a STOP or pause committed before it
is seen, one that comes later waits for the send to finish, and the dispatcher's reclaim (SKIP
LOCKED) never takes a row being sent. SQLite has no row locks: there the gate is an UPDATE of
the row, whose write lock holds the database through the call.

On PostgreSQL the gate also runs on connections of its own whose commits do not wait for the
WAL to reach the disk (`synchronous_commit = off`). Locks and visibility are unchanged; what
such a commit holds is only the row locks and a heartbeat, nothing a database crash could lose
that matters (the row is still in sending, its text stored by an earlier, durable commit, and
reconcile finds it in the provider's log). A transaction that settles a row for good (a
refusal, a provider error) asks for a durable commit first (`durable`).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import bindparam, create_engine, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Select, Update
from sqlmodel import Session

from bot.clock import now
from bot.settings import Settings
from bot.store.db import reads_end_in_commit
from bot.store.models import Delivery, DeliveryStatus, Participant, WorkerHeartbeat

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = timedelta(seconds=2)  # a sending worker's sign of life, at most this often

_TABLE = Delivery.__table__  # type: ignore[attr-defined]
_PEOPLE = Participant.__table__  # type: ignore[attr-defined]
_BEATS = WorkerHeartbeat.__table__  # type: ignore[attr-defined]
# A pause holds automated messages only: a text a person wrote still reaches a paused participant.
_NOT_PAUSED = or_(_PEOPLE.c.paused_at.is_(None), _TABLE.c.staff_id.is_not(None))
# The row is still ours: in sending, under our claim token.
_MINE = (
    _TABLE.c.id == bindparam("delivery_id"),
    _TABLE.c.status == DeliveryStatus.SENDING,
    _TABLE.c.claim_token == bindparam("token"),
)


@cache
def _asynchronous(url: str, size: int) -> Engine:
    return reads_end_in_commit(create_engine(
        url, pool_pre_ping=True, pool_size=size, max_overflow=size, hide_parameters=True,
        connect_args={"options": "-c synchronous_commit=off"},
    ))


def gate_engine(engine: Engine, size: int) -> Engine:
    """Where send gates run: on PostgreSQL, a pool of `size` connections whose commits do not
    wait for the WAL flush (see the module's docstring); elsewhere `engine` itself."""
    if engine.dialect.name != "postgresql":
        return engine
    return _asynchronous(engine.url.render_as_string(hide_password=False), size)


def durable(connection: Connection) -> None:
    """Make the current transaction's commit wait for the WAL flush, as commits usually do."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL synchronous_commit TO on")


def send_window(settings: Settings) -> timedelta:
    """How long after its claim a row may still be handed to the provider: well under the claim
    timeout, after which the dispatcher has it reconciled, so the two never overlap."""
    return timedelta(seconds=settings.claim_timeout_seconds) / 3


@cache
def _passes(dialect: str) -> Update:
    """UPDATE ... RETURNING id where the row is ours, claimed within the send window, and its
    participant consents and is not paused (or a person wrote it): the gate where there are no
    row locks (SQLite), whose write holds the database through the provider call."""
    consents = select(_PEOPLE.c.id).where(
        _PEOPLE.c.id == _TABLE.c.participant_id,
        _PEOPLE.c.opted_out_at.is_(None),
        _NOT_PAUSED,
        _PEOPLE.c.undeliverable_at.is_(None),
    )
    return (
        update(_TABLE)
        .where(*_MINE, _TABLE.c.claimed_at >= bindparam("window_start"), consents.exists())
        .values(claimed_at=bindparam("moment"))
        .returning(_TABLE.c.id)
    )


@cache
def _locks_on_postgres() -> tuple[str, dict[str, object]]:
    """The gate on PostgreSQL, as psycopg runs it (with its constant parameters): a SELECT of
    the row where it is ours, claimed within the send window, and its participant consents
    and is not paused; it locks the row as an UPDATE would (FOR NO KEY UPDATE) and the
    participant FOR SHARE, and writes nothing."""
    query = (
        select(_TABLE.c.id)
        .join(_PEOPLE, _PEOPLE.c.id == _TABLE.c.participant_id)
        .where(
            *_MINE, _TABLE.c.claimed_at >= bindparam("window_start"),
            _PEOPLE.c.opted_out_at.is_(None), _NOT_PAUSED, _PEOPLE.c.undeliverable_at.is_(None),
        )
    )
    compiled = query.compile(dialect=postgresql.psycopg.dialect())
    statement = f"{compiled} FOR NO KEY UPDATE OF {_TABLE.name} FOR SHARE OF {_PEOPLE.name}"
    constants = {
        name: str(bind.value) for name, bind in compiled.binds.items()
        if bind.value is not None and f"%({name})s" in statement
    }
    return statement, constants


def _pass(connection: Connection, values: dict[str, object]) -> bool:
    """Run the gate's statement in the connection's transaction; whether the row passed."""
    if connection.dialect.name != "postgresql":
        return connection.execute(_passes(connection.dialect.name), values).first() is not None
    statement, constants = _locks_on_postgres()
    # Straight to the driver, a few SQLAlchemy layers less per message, in the transaction
    # `connection` began: it commits or rolls back with it.
    with connection.connection.driver_connection.cursor() as cursor:
        cursor.execute(statement, {**constants, "delivery_id": values["delivery_id"],
                                   "token": values["token"],
                                   "window_start": values["window_start"]})
        return cursor.fetchone() is not None


@cache
def _refused() -> Select:
    """Why the gate refused a row: its claim and its participant's state."""
    return (
        select(
            _TABLE.c.status, _TABLE.c.claim_token, _TABLE.c.attempts, _PEOPLE.c.opted_out_at,
            _PEOPLE.c.paused_at, _PEOPLE.c.undeliverable_at, _TABLE.c.staff_id,
        )
        .join(_PEOPLE, _PEOPLE.c.id == _TABLE.c.participant_id)
        .where(_TABLE.c.id == bindparam("delivery_id"))
    )


@cache
def _beat(dialect: str) -> postgresql.Insert | sqlite.Insert:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(_BEATS)
        .values(worker_id=bindparam("worker_id"), started_at=bindparam("moment"),
                beat_at=bindparam("moment"))
        .on_conflict_do_update(
            index_elements=[_BEATS.c.worker_id], set_={"beat_at": bindparam("moment")}
        )
    )


def beat(connection: Connection | Session, worker_id: str, moment: datetime) -> None:
    """Record that `worker_id` is alive (see WorkerHeartbeat)."""
    dialect = (
        connection.dialect if isinstance(connection, Connection)
        else connection.get_bind().dialect
    )
    connection.execute(_beat(dialect.name), {"worker_id": worker_id, "moment": moment})


def gate(*, connection: Connection, settings: Settings, delivery_id: int, token: str) -> str:
    """The send gate, right before the provider call: "send" if the row is still ours (sending
    under `token`, claimed within the send window) and its participant still consents and is
    not paused (a text a person wrote goes out paused too), read from the database now;
    otherwise the row is settled and the reason returned ("cancelled", "deferred", "skipped").

    The participant row is held FOR SHARE and the delivery row locked until the caller's
    transaction ends, which it does after the provider call (on SQLite, the whole database):
    a STOP or a pause that commits first is seen here, one that comes later waits for this send
    to finish, and the dispatcher's reclaim never takes a row that is being sent.
    """
    moment = now()
    mine = {"delivery_id": delivery_id, "token": token}
    if _pass(connection, {**mine, "window_start": moment - send_window(settings),
                          "moment": moment}):
        return "send"
    found = connection.execute(_refused(), {"delivery_id": delivery_id}).first()
    if found is None:
        return "skipped"
    status, claim_token, attempts, opted_out_at, paused_at, undeliverable_at, staff_id = found
    paused_at = paused_at if staff_id is None else None  # a person's text goes out paused too
    if status != DeliveryStatus.SENDING or claim_token != token:
        return "skipped"  # reconciled or taken over: no longer ours to send
    ours = update(_TABLE).where(*_MINE)
    durable(connection)
    if opted_out_at or paused_at or undeliverable_at:
        reason = "opted out" if opted_out_at else ("paused" if paused_at else "unreachable")
        connection.execute(ours.values(
            status=DeliveryStatus.CANCELLED, final_at=moment,
            error_message=f"not sent: participant {reason}",
        ), mine)
        log.info("delivery %s stopped at the send gate: participant %s", delivery_id, reason)
        return "cancelled"
    # Claimed too long ago (the batch waited for its rate slots): back to the outbox, due now.
    connection.execute(ours.values(
        status=DeliveryStatus.SCHEDULED, due_at=moment, claimed_at=None, claim_token=None,
        claimed_by=None, attempts=max(attempts - 1, 0),
    ), mine)
    return "deferred"
