"""Bulk rows for the benchmark, made in PostgreSQL itself (INSERT ... SELECT generate_series)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.engine import Engine

from bot.clock import now

PROGRAM = "daily-checkin"
TIMEZONE = "America/New_York"
FIRST_NUMBER = 6172000000  # +1 617 200 0000 onwards: valid US numbers, none of them real people
EVENT_TEMPLATE = "daily_tip.txt"
ASSESSMENT = json.dumps(
    {
        "type": "scale", "min": 1, "max": 5,
        "thanks": "Thanks for telling us. See you tomorrow.",
        "clarify": "Sorry, I didn't catch that. Please reply with one number from 1 to 5.",
    }
)


def phone(index: int) -> str:
    """The benchmark participant number `index` (0-based), E.164."""
    return f"+1{FIRST_NUMBER + index}"


def add_participants(engine: Engine, count: int) -> list[int]:
    """Enroll `count` participants in the daily check-in program; their ids, in order."""
    with engine.begin() as connection:
        rows = connection.execute(
            text(
                """
                INSERT INTO participant (phone, program, timezone, enrolled_at, enrolled_via,
                                         attributes)
                SELECT '+1' || (:first + i)::text, :program, :tz, now() - interval '1 day',
                       'import', '{}'::json
                FROM generate_series(0, :count - 1) AS i
                ORDER BY i
                RETURNING id
                """
            ),
            {"first": FIRST_NUMBER, "program": PROGRAM, "tz": TIMEZONE, "count": count},
        )
        return sorted(rows.scalars())


def add_due_events(
    engine: Engine, participant_ids: list[int], *, due_at: datetime, occurrence: int = 3
) -> int:
    """One daily-tip event per participant, due at `due_at`, body rendered at send time."""
    with engine.begin() as connection:
        return connection.execute(
            text(
                """
                INSERT INTO delivery (participant_id, kind, event_key, template, context, due_at,
                                      status, via, attempts, program_version, created_at)
                SELECT pid, 'event', :key, :template, '{}'::json, :due, 'scheduled', 'api', 0,
                       NULL, now()
                FROM unnest(CAST(:ids AS integer[])) AS pid
                """
            ),
            {
                "ids": participant_ids,
                "key": f"daily_tip#{occurrence}",
                "template": EVENT_TEMPLATE,
                "due": due_at,
            },
        ).rowcount


def add_future_rows(engine: Engine, participant_ids: list[int], count: int) -> None:
    """`count` scheduled rows due over the coming months (what a big outbox mostly holds)."""
    first, span = participant_ids[0], len(participant_ids)
    with engine.begin() as connection:
        connection.execute(
            text(
                """
                INSERT INTO delivery (participant_id, kind, event_key, template, context, due_at,
                                      status, via, attempts, created_at)
                SELECT :first + (i % :span), 'event', 'daily_tip#' || (1 + i % 7)::text,
                       :template, '{}'::json,
                       now() + interval '1 hour' + (i % 10000000) * interval '1 second',
                       'scheduled', 'api', 0, now()
                FROM generate_series(1, :count) AS i
                """
            ),
            {"first": first, "span": span, "count": count, "template": EVENT_TEMPLATE},
        )


def add_sent_prompts(engine: Engine, participant_ids: list[int]) -> None:
    """An evening question sent an hour ago to each participant, waiting for its answer."""
    sent = now() - timedelta(hours=1)
    with engine.begin() as connection:
        connection.execute(
            text(
                """
                INSERT INTO delivery (participant_id, kind, event_key, template, context,
                                      assessment, due_at, status, via, attempts, body, segments,
                                      created_at, sent_at, claimed_at)
                SELECT pid, 'event', 'evening_rating#1', 'evening_rating.txt', '{}'::json,
                       CAST(:assessment AS json), :sent, 'delivered', 'api', 1,
                       'How did today go? Reply 1 (hard) to 5 (good).', 1, :sent, :sent, :sent
                FROM unnest(CAST(:ids AS integer[])) AS pid
                """
            ),
            {"ids": participant_ids, "assessment": ASSESSMENT, "sent": sent},
        )


def delete_deliveries(engine: Engine) -> None:
    """Forget every delivery (and what hangs off them), keeping the participants."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "TRUNCATE answer, delivery_event, unmatched_status, decision_point, delivery "
                "RESTART IDENTITY CASCADE"
            )
        )


def progress(engine: Engine) -> tuple[int, int, datetime | None]:
    """(rows still on their way, rows the provider accepted, when the last sid was stored)."""
    with engine.connect() as connection:
        pending, accepted, last = connection.execute(
            text(
                """
                SELECT count(*) FILTER (WHERE status IN ('scheduled', 'queued', 'sending')),
                       count(*) FILTER (WHERE provider_sid IS NOT NULL),
                       max(sent_at)
                FROM delivery WHERE kind = 'event'
                """
            )
        ).one()
    return int(pending), int(accepted), last
