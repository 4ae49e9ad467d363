"""retours: each state change sent back to a partner; affectations.statut moves forward only

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retours",
        sa.Column("retour_id", sa.String(100), primary_key=True),
        sa.Column("signalement_id", sa.String(36), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("source_ref", sa.String(100), nullable=False),
        sa.Column("statut", sa.String(20), nullable=False),
        sa.Column("statut_precedent", sa.String(20)),
        sa.Column("issue", sa.String(30)),
        sa.Column("change_le", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_retours_signalement_id", "retours", ["signalement_id"])
    op.add_column("affectations", sa.Column("statut_change_le", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("affectations") as batch:
        batch.drop_column("statut_change_le")
    op.drop_table("retours")
