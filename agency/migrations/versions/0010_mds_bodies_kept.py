"""datacite_dois.submission_id: the submission whose folder keeps the DOI's latest MDS body

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 04:24:07.806116
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('datacite_dois', schema=None) as batch_op:
        batch_op.add_column(sa.Column('submission_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_datacite_dois_submission_id', 'submissions', ['submission_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('datacite_dois', schema=None) as batch_op:
        batch_op.drop_constraint('fk_datacite_dois_submission_id', type_='foreignkey')
        batch_op.drop_column('submission_id')
