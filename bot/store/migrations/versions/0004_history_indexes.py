"""history indexes: a participant's history read by recency, the outbox claim in a stable order

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 15:40:00.000000

Plain CREATE INDEX, not CONCURRENTLY: env.py runs every pending migration in one transaction,
and CONCURRENTLY cannot run inside one (an autocommit block would commit the migrations before
it half way through `bot migrate`). On a large deployment, building these takes a write lock on
delivery, answer, intervention_run and decision_point for as long as each build lasts.
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        # The claim's tiebreak: due rows by due_at, then id, read off the index.
        batch_op.drop_index('ix_delivery_status_due')
        batch_op.create_index('ix_delivery_status_due', ['status', 'due_at', 'id'], unique=False)
        batch_op.create_index('ix_delivery_participant_sent', ['participant_id', 'sent_at'], unique=False)
        batch_op.create_index('ix_delivery_participant_kind', ['participant_id', 'kind'], unique=False)

    with op.batch_alter_table('answer', schema=None) as batch_op:
        batch_op.create_index('ix_answer_participant_answered', ['participant_id', 'answered_at'], unique=False)

    with op.batch_alter_table('intervention_run', schema=None) as batch_op:
        batch_op.create_index('ix_intervention_run_participant_ended', ['participant_id', 'ended_at'], unique=False)

    with op.batch_alter_table('decision_point', schema=None) as batch_op:
        batch_op.create_index('ix_decision_point_participant_open', ['participant_id', 'outcome_status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('decision_point', schema=None) as batch_op:
        batch_op.drop_index('ix_decision_point_participant_open')

    with op.batch_alter_table('intervention_run', schema=None) as batch_op:
        batch_op.drop_index('ix_intervention_run_participant_ended')

    with op.batch_alter_table('answer', schema=None) as batch_op:
        batch_op.drop_index('ix_answer_participant_answered')

    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_participant_kind')
        batch_op.drop_index('ix_delivery_participant_sent')
        batch_op.drop_index('ix_delivery_status_due')
        batch_op.create_index('ix_delivery_status_due', ['status', 'due_at'], unique=False)
