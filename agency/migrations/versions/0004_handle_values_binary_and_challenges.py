"""Handle values as the protocol carries them; open challenges

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 02:06:58.621584
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('handle_challenges',
    sa.Column('session_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('nonce', sa.LargeBinary(), nullable=False),
    sa.Column('request', sa.LargeBinary(), nullable=False),
    sa.Column('issued', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('session_id')
    )
    with op.batch_alter_table('handle_challenges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_handle_challenges_issued'), ['issued'], unique=False)

    with op.batch_alter_table('handle_values', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ttl_type', sa.SmallInteger(), server_default=sa.text('0'), nullable=False))
        batch_op.add_column(sa.Column('refs', sa.Text(), server_default=sa.text("('')"), nullable=False))
        batch_op.add_column(sa.Column('admin_read', sa.Boolean(), server_default=sa.text('(true)'), nullable=False))
        batch_op.add_column(sa.Column('admin_write', sa.Boolean(), server_default=sa.text('(true)'), nullable=False))
        batch_op.add_column(sa.Column('pub_read', sa.Boolean(), server_default=sa.text('(true)'), nullable=False))
        batch_op.add_column(sa.Column('pub_write', sa.Boolean(), server_default=sa.text('(false)'), nullable=False))
        batch_op.alter_column('data',
               existing_type=sa.TEXT(),
               type_=sa.LargeBinary(),
               existing_nullable=False,
               postgresql_using="convert_to(data, 'UTF8')")
    if op.get_bind().dialect.name == "sqlite":
        # The table copy keeps each stored value's TEXT storage class; values are bytes from now on.
        op.execute("UPDATE handle_values SET data = CAST(data AS BLOB) WHERE typeof(data) = 'text'")



def downgrade() -> None:
    with op.batch_alter_table('handle_values', schema=None) as batch_op:
        batch_op.alter_column('data',
               existing_type=sa.LargeBinary(),
               type_=sa.TEXT(),
               existing_nullable=False,
               postgresql_using="convert_from(data, 'UTF8')")
        batch_op.drop_column('pub_write')
        batch_op.drop_column('pub_read')
        batch_op.drop_column('admin_write')
        batch_op.drop_column('admin_read')
        batch_op.drop_column('refs')
        batch_op.drop_column('ttl_type')

    with op.batch_alter_table('handle_challenges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_handle_challenges_issued'))

    op.drop_table('handle_challenges')
