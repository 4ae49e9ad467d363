"""affectations: one row per signalement, the latest routing decision

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "affectations",
        sa.Column("signalement_id", sa.String(36), primary_key=True),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("nature", sa.String(20), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("source_ref", sa.String(100), nullable=False),
        sa.Column("nir_pseudonyme", sa.String(64), nullable=False),
        sa.Column("recu_le", sa.DateTime(timezone=True), nullable=False),
        sa.Column("departement", sa.String(3), nullable=False),
        sa.Column("file", sa.String(64), nullable=False),
        sa.Column("equipe", sa.String(64)),
        sa.Column("axe", sa.String(3), nullable=False),
        sa.Column("priorite", sa.Integer, nullable=False),
        sa.Column("assistant", sa.String(64)),
        sa.Column("regle", sa.String(64), nullable=False),
        sa.Column("config_version", sa.String(64), nullable=False),
        sa.Column("explication", sa.Text, nullable=False),
        sa.Column("echeance_premier_contact", sa.Date, nullable=False),
        sa.Column("decide_le", sa.DateTime(timezone=True), nullable=False),
        sa.Column("statut", sa.String(20), nullable=False, server_default="requested"),
    )
    op.create_index("ix_affectations_file", "affectations", ["file"])
    op.create_index("ix_affectations_nir_pseudonyme", "affectations", ["nir_pseudonyme"])


def downgrade() -> None:
    op.drop_table("affectations")
