"""rejection counts off the integration's row

Counting a refused webhook call updated ``integrations.rejected_count``, and every UPDATE of
that row moves ``updated_at``, the version the inbox checks before it stores a delivery. The
count moves to a table of its own, existing counts included.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 03:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('rejection_counts',
    sa.Column('integration_id', sa.Integer(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['integration_id'], ['integrations.id'], name=op.f('fk_rejection_counts_integration_id_integrations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('integration_id', name=op.f('pk_rejection_counts'))
    )
    op.execute("INSERT INTO rejection_counts (integration_id, count) "
               "SELECT id, rejected_count FROM integrations WHERE rejected_count > 0")
    with op.batch_alter_table('integrations', schema=None) as batch_op:
        batch_op.drop_column('rejected_count')


def downgrade():
    with op.batch_alter_table('integrations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rejected_count', sa.Integer(), nullable=False, server_default='0'))
    op.execute("UPDATE integrations SET rejected_count = (SELECT count FROM rejection_counts "
               "WHERE rejection_counts.integration_id = integrations.id) "
               "WHERE id IN (SELECT integration_id FROM rejection_counts)")
    with op.batch_alter_table('integrations', schema=None) as batch_op:
        batch_op.alter_column('rejected_count', server_default=None)
    op.drop_table('rejection_counts')
