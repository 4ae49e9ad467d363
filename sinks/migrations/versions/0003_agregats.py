"""agregats: the latest value of each live figure, keyed by its aggregate key

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agregats",
        sa.Column("cle", sa.String(500), primary_key=True),
        sa.Column("indicateur", sa.String(64), nullable=False),
        sa.Column("periode_type", sa.String(10), nullable=False),
        sa.Column("periode", sa.String(20), nullable=False),
        sa.Column("dimensions", sa.JSON, nullable=False),
        sa.Column("valeur", sa.Float),
        sa.Column("masque", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("maj_le", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_agregats_indicateur", "agregats", ["indicateur"])


def downgrade() -> None:
    op.drop_table("agregats")
