"""safety and integrity: one answer per question, consent record, alert messages, heartbeats

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 09:26:26.812720
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


import bot.store.models

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('worker_heartbeat',
    sa.Column('worker_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('started_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('beat_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('worker_id')
    )
    with op.batch_alter_table('worker_heartbeat', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_worker_heartbeat_beat_at'), ['beat_at'], unique=False)

    op.create_table('consent_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('via', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participant.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('consent_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_event_participant_id'), ['participant_id'], unique=False)

    op.create_table('alert_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=False),
    sa.Column('inbound_message_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alert.id'], ),
    sa.ForeignKeyConstraint(['inbound_message_id'], ['inbound_message.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('inbound_message_id')
    )
    with op.batch_alter_table('alert_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alert_message_alert_id'), ['alert_id'], unique=False)

    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.add_column(sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))

    # One question, one answer. Where a race credited two, keep the first real reply (else the
    # first row) and drop the others; their texts stay in inbound_message.
    op.execute(
        """
        DELETE FROM answer WHERE id IN (
            SELECT id FROM (
                SELECT id, ROW_NUMBER() OVER (
                    PARTITION BY delivery_id ORDER BY missing, id
                ) AS rank FROM answer
            ) ranked WHERE rank > 1
        )
        """
    )
    with op.batch_alter_table('answer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_answer_delivery_id'))
        batch_op.create_unique_constraint('uq_answer_delivery_id', ['delivery_id'])

    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_column('claimed_by')

    with op.batch_alter_table('answer', schema=None) as batch_op:
        batch_op.drop_constraint('uq_answer_delivery_id', type_='unique')
        batch_op.create_index(batch_op.f('ix_answer_delivery_id'), ['delivery_id'], unique=False)

    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.drop_column('category')

    with op.batch_alter_table('alert_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_message_alert_id'))

    op.drop_table('alert_message')
    with op.batch_alter_table('consent_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_event_participant_id'))

    op.drop_table('consent_event')
    with op.batch_alter_table('worker_heartbeat', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_worker_heartbeat_beat_at'))

    op.drop_table('worker_heartbeat')
