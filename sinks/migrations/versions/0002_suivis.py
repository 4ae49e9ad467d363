"""suivis: one row per caseworker-side event, keyed by its deterministic suivi_id

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suivis",
        sa.Column("suivi_id", sa.String(100), primary_key=True),
        sa.Column("signalement_id", sa.String(36)),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("survenu_le", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assistant", sa.String(64)),
        sa.Column("equipe", sa.String(64)),
        sa.Column("mode_entretien", sa.String(20)),
        sa.Column("preconisation", sa.String(30)),
        sa.Column("issue", sa.String(30)),
        sa.Column("reorientation_vers", sa.String(100)),
        sa.Column("seances", sa.Integer),
        sa.Column("participants", sa.Integer),
        sa.Column("commentaire", sa.Text),
    )
    op.create_index("ix_suivis_signalement_id", "suivis", ["signalement_id"])


def downgrade() -> None:
    op.drop_table("suivis")
