"""The class board: classes and posts.

Revision ID: 0001_board_initial
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_board_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create board_class and board_post."""
    op.create_table(
        "board_class",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("teacher_token", sa.String(64), nullable=False),
        sa.Column("view_token", sa.String(64), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("auto_post", sa.Boolean(), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
    )
    op.create_index("ix_board_class_code", "board_class", ["code"], unique=True)
    op.create_index("ix_board_class_teacher_token", "board_class", ["teacher_token"],
                    unique=True)
    op.create_index("ix_board_class_view_token", "board_class", ["view_token"], unique=True)
    op.create_table(
        "board_post",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("class_id", sa.Integer(),
                  sa.ForeignKey("board_class.id", ondelete="CASCADE"), nullable=False),
        sa.Column("nickname", sa.String(40), nullable=False),
        sa.Column("session", sa.String(64), nullable=False),
        sa.Column("query", sa.String(2000), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("activation", sa.String(32), nullable=False),
        sa.Column("init", sa.String(32), nullable=False),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("loss", sa.Float(), nullable=True),
        sa.Column("accuracy", sa.Float(), nullable=True),
        sa.Column("grad_ratio", sa.Float(), nullable=True),
        sa.Column("diverged_at", sa.Integer(), nullable=True),
        sa.Column("delta_start", sa.JSON(), nullable=False),
        sa.Column("delta_end", sa.JSON(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
    )
    op.create_index("ix_board_post_class_id", "board_post", ["class_id"])


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("board_post")
    op.drop_table("board_class")
