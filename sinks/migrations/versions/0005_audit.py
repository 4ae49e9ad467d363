"""audit: who read which personal rows and who changed what (aiguillage/auth/audit.py)

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit",
        sa.Column("audit_id", sa.String(36), primary_key=True),
        sa.Column("qui", sa.String(200), nullable=False),
        sa.Column("role", sa.String(500), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("signalements", sa.Text, nullable=False),
        sa.Column("equipe", sa.String(100)),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_audit_qui", "audit", ["qui"])
    op.create_index("ix_audit_action", "audit", ["action"])
    op.create_index("ix_audit_at", "audit", ["at"])


def downgrade() -> None:
    op.drop_table("audit")
