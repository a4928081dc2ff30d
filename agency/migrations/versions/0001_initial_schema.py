"""Initial schema: every table agency had before migrations

Revision ID: 0001
Revises: 
Create Date: 2026-11-30

The tables agency/models/ defined when migrations were introduced, audit_events
included. Databases made before then (by create_all) are adopted by stamping
this revision (agency.migrations.schema_version.BASELINE).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('login', sa.String(length=128), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('login')
    )
    op.create_table('job_locks',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('owner', sa.String(length=255), nullable=True),
    sa.Column('acquired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('job_runs',
    sa.Column('job_id', sa.String(length=64), nullable=False),
    sa.Column('last_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_status', sa.String(length=16), nullable=True),
    sa.Column('last_summary', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('job_id')
    )
    op.create_table('mddb_loads',
    sa.Column('folder', sa.String(length=1024), nullable=False),
    sa.Column('log_sha256', sa.String(length=64), nullable=False),
    sa.Column('log_size', sa.BigInteger(), nullable=False),
    sa.Column('log_mtime_ns', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=True),
    sa.Column('batch_id', sa.String(length=255), nullable=True),
    sa.Column('record_count', sa.Integer(), nullable=False),
    sa.Column('registered_count', sa.Integer(), nullable=False),
    sa.Column('indexed_count', sa.Integer(), nullable=False),
    sa.Column('warning_count', sa.Integer(), nullable=False),
    sa.Column('failure_count', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('folder')
    )
    op.create_index(op.f('ix_mddb_loads_status'), 'mddb_loads', ['status'], unique=False)
    op.create_table('metadata_records',
    sa.Column('doi_key', sa.String(length=2048), nullable=False),
    sa.Column('doi', sa.String(length=2048), nullable=False),
    sa.Column('prefix', sa.String(length=64), nullable=False),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('content_type', sa.String(length=64), nullable=False),
    sa.Column('body_type', sa.String(length=64), nullable=False),
    sa.Column('publication_type', sa.String(length=64), nullable=True),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('title_key', sa.String(length=512), nullable=True),
    sa.Column('journal_title', sa.Text(), nullable=True),
    sa.Column('journal_title_key', sa.String(length=512), nullable=True),
    sa.Column('journal_abbrev', sa.Text(), nullable=True),
    sa.Column('journal_abbrev_key', sa.String(length=512), nullable=True),
    sa.Column('series_title', sa.Text(), nullable=True),
    sa.Column('series_title_key', sa.String(length=512), nullable=True),
    sa.Column('volume_title', sa.Text(), nullable=True),
    sa.Column('volume_title_key', sa.String(length=512), nullable=True),
    sa.Column('volume', sa.String(length=255), nullable=True),
    sa.Column('volume_key', sa.String(length=255), nullable=True),
    sa.Column('issue', sa.String(length=255), nullable=True),
    sa.Column('issue_key', sa.String(length=255), nullable=True),
    sa.Column('first_page', sa.String(length=255), nullable=True),
    sa.Column('first_page_key', sa.String(length=255), nullable=True),
    sa.Column('last_page', sa.String(length=255), nullable=True),
    sa.Column('edition_number', sa.String(length=64), nullable=True),
    sa.Column('component_number', sa.String(length=255), nullable=True),
    sa.Column('year', sa.Integer(), nullable=True),
    sa.Column('publisher', sa.Text(), nullable=True),
    sa.Column('registrant', sa.Text(), nullable=True),
    sa.Column('depositor_login', sa.String(length=255), nullable=False),
    sa.Column('first_author_surname', sa.Text(), nullable=True),
    sa.Column('first_author_key', sa.String(length=512), nullable=True),
    sa.Column('version', sa.String(length=19), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=True),
    sa.Column('batch_folder', sa.String(length=1024), nullable=False),
    sa.Column('indexed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('doi_key')
    )
    op.create_index('ix_mdrec_abbrev_vol_page', 'metadata_records', ['journal_abbrev_key', 'volume_key', 'first_page_key'], unique=False, sqlite_where=sa.text('journal_abbrev_key IS NOT NULL'), postgresql_where=sa.text('journal_abbrev_key IS NOT NULL'))
    op.create_index('ix_mdrec_author_year_page', 'metadata_records', ['first_author_key', 'year', 'first_page_key'], unique=False)
    op.create_index('ix_mdrec_journal_vol_page', 'metadata_records', ['journal_title_key', 'volume_key', 'first_page_key'], unique=False)
    op.create_index('ix_mdrec_page_vol', 'metadata_records', ['first_page_key', 'volume_key'], unique=False)
    op.create_index('ix_mdrec_series_title', 'metadata_records', ['series_title_key'], unique=False, sqlite_where=sa.text('series_title_key IS NOT NULL'), postgresql_where=sa.text('series_title_key IS NOT NULL'))
    op.create_index('ix_mdrec_volume_title', 'metadata_records', ['volume_title_key'], unique=False, sqlite_where=sa.text('volume_title_key IS NOT NULL'), postgresql_where=sa.text('volume_title_key IS NOT NULL'))
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.Column('recipients', sa.Text(), nullable=False),
    sa.Column('subject', sa.String(length=998), nullable=False),
    sa.Column('text_body', sa.Text(), nullable=False),
    sa.Column('html_body', sa.Text(), nullable=True),
    sa.Column('attachment_name', sa.String(length=255), nullable=True),
    sa.Column('attachment_path', sa.String(length=1024), nullable=True),
    sa.Column('attachment_type', sa.String(length=128), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('claimed_by', sa.String(length=128), nullable=True),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key'),
    sa.UniqueConstraint('message_id')
    )
    op.create_index('ix_outbox_due', 'outbox', ['status', 'next_attempt_at'], unique=False)
    op.create_index(op.f('ix_outbox_status'), 'outbox', ['status'], unique=False)
    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=2100), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_audit_events_account_id'), 'audit_events', ['account_id'], unique=False)
    op.create_index(op.f('ix_audit_events_at'), 'audit_events', ['at'], unique=False)
    op.create_index('ix_audit_events_subject_at', 'audit_events', ['subject', 'at'], unique=False)
    op.create_table('handles',
    sa.Column('key', sa.String(length=2048), nullable=False),
    sa.Column('name', sa.String(length=2048), nullable=False),
    sa.Column('prefix', sa.String(length=64), nullable=False),
    sa.Column('version', sa.String(length=19), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_index(op.f('ix_handles_prefix'), 'handles', ['prefix'], unique=False)
    op.create_table('metadata_contributors',
    sa.Column('doi_key', sa.String(length=2048), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('role', sa.String(length=64), nullable=True),
    sa.Column('sequence', sa.String(length=16), nullable=True),
    sa.Column('is_first_author', sa.Boolean(), nullable=False),
    sa.Column('surname', sa.Text(), nullable=True),
    sa.Column('given_name', sa.Text(), nullable=True),
    sa.Column('surname_key', sa.String(length=512), nullable=True),
    sa.Column('orcid', sa.String(length=255), nullable=True),
    sa.ForeignKeyConstraint(['doi_key'], ['metadata_records.doi_key'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('doi_key', 'position')
    )
    op.create_table('metadata_identifiers',
    sa.Column('doi_key', sa.String(length=2048), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('value', sa.String(length=32), nullable=False),
    sa.Column('media_type', sa.String(length=16), nullable=True),
    sa.Column('valid_check_digit', sa.Boolean(), nullable=False),
    sa.Column('raw', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['doi_key'], ['metadata_records.doi_key'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('doi_key', 'kind', 'value')
    )
    op.create_index('ix_mdident_value', 'metadata_identifiers', ['kind', 'value'], unique=False)
    op.create_table('metadata_locators',
    sa.Column('issn', sa.String(length=32), nullable=False),
    sa.Column('volume_key', sa.String(length=512), nullable=False),
    sa.Column('first_page_key', sa.String(length=512), nullable=False),
    sa.Column('doi_key', sa.String(length=2048), nullable=False),
    sa.ForeignKeyConstraint(['doi_key'], ['metadata_records.doi_key'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('issn', 'volume_key', 'first_page_key', 'doi_key')
    )
    op.create_index(op.f('ix_metadata_locators_doi_key'), 'metadata_locators', ['doi_key'], unique=False)
    op.create_table('prefixes',
    sa.Column('prefix', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('prefix')
    )
    op.create_index(op.f('ix_prefixes_account_id'), 'prefixes', ['account_id'], unique=False)
    op.create_table('submissions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('operation', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('file_name', sa.String(length=512), nullable=False),
    sa.Column('doi_batch_id', sa.String(length=255), nullable=True),
    sa.Column('namespace', sa.String(length=255), nullable=True),
    sa.Column('depositor_email', sa.String(length=320), nullable=True),
    sa.Column('batch_timestamp', sa.String(length=32), nullable=True),
    sa.Column('storage_path', sa.String(length=1024), nullable=False),
    sa.Column('byte_size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('record_count', sa.Integer(), nullable=False),
    sa.Column('success_count', sa.Integer(), nullable=False),
    sa.Column('warning_count', sa.Integer(), nullable=False),
    sa.Column('failure_count', sa.Integer(), nullable=False),
    sa.Column('records_done', sa.Integer(), nullable=False),
    sa.Column('refusal_kind', sa.String(length=32), nullable=True),
    sa.Column('refusal', sa.Text(), nullable=True),
    sa.Column('lease_owner', sa.String(length=128), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_slice_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('index_status', sa.String(length=16), nullable=True),
    sa.Column('indexed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_submissions_account_received', 'submissions', ['account_id', 'received_at'], unique=False)
    op.create_index(op.f('ix_submissions_doi_batch_id'), 'submissions', ['doi_batch_id'], unique=False)
    op.create_index('ix_submissions_status', 'submissions', ['status'], unique=False)
    op.create_table('handle_values',
    sa.Column('handle_key', sa.String(length=2048), nullable=False),
    sa.Column('idx', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=255), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('ttl', sa.Integer(), nullable=False),
    sa.Column('timestamp', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['handle_key'], ['handles.key'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('handle_key', 'idx')
    )
    op.create_table('record_results',
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('doi', sa.String(length=2048), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('submission_id', 'seq')
    )


def downgrade() -> None:
    op.drop_table('record_results')
    op.drop_table('handle_values')
    op.drop_index('ix_submissions_status', table_name='submissions')
    op.drop_index(op.f('ix_submissions_doi_batch_id'), table_name='submissions')
    op.drop_index('ix_submissions_account_received', table_name='submissions')
    op.drop_table('submissions')
    op.drop_index(op.f('ix_prefixes_account_id'), table_name='prefixes')
    op.drop_table('prefixes')
    op.drop_index(op.f('ix_metadata_locators_doi_key'), table_name='metadata_locators')
    op.drop_table('metadata_locators')
    op.drop_index('ix_mdident_value', table_name='metadata_identifiers')
    op.drop_table('metadata_identifiers')
    op.drop_table('metadata_contributors')
    op.drop_index(op.f('ix_handles_prefix'), table_name='handles')
    op.drop_table('handles')
    op.drop_index('ix_audit_events_subject_at', table_name='audit_events')
    op.drop_index(op.f('ix_audit_events_at'), table_name='audit_events')
    op.drop_index(op.f('ix_audit_events_account_id'), table_name='audit_events')
    op.drop_table('audit_events')
    op.drop_index(op.f('ix_outbox_status'), table_name='outbox')
    op.drop_index('ix_outbox_due', table_name='outbox')
    op.drop_table('outbox')
    op.drop_index('ix_mdrec_volume_title', table_name='metadata_records', sqlite_where=sa.text('volume_title_key IS NOT NULL'), postgresql_where=sa.text('volume_title_key IS NOT NULL'))
    op.drop_index('ix_mdrec_series_title', table_name='metadata_records', sqlite_where=sa.text('series_title_key IS NOT NULL'), postgresql_where=sa.text('series_title_key IS NOT NULL'))
    op.drop_index('ix_mdrec_page_vol', table_name='metadata_records')
    op.drop_index('ix_mdrec_journal_vol_page', table_name='metadata_records')
    op.drop_index('ix_mdrec_author_year_page', table_name='metadata_records')
    op.drop_index('ix_mdrec_abbrev_vol_page', table_name='metadata_records', sqlite_where=sa.text('journal_abbrev_key IS NOT NULL'), postgresql_where=sa.text('journal_abbrev_key IS NOT NULL'))
    op.drop_table('metadata_records')
    op.drop_index(op.f('ix_mddb_loads_status'), table_name='mddb_loads')
    op.drop_table('mddb_loads')
    op.drop_table('job_runs')
    op.drop_table('job_locks')
    op.drop_table('accounts')
