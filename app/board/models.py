"""The class board's tables (SQLAlchemy 2). Schema changes go through an Alembic migration
in ``app/board/migrations/versions`` (the models and the migrations must agree:
``tests/test_board_store.py`` checks that a migrated database matches these models)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of the board's models."""


class ClassRoom(Base):
    """A class: a join code students type, a teacher token only the teacher's link holds."""

    __tablename__ = "board_class"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(16), unique=True, index=True)
    teacher_token: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    view_token: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(80))
    auto_post: Mapped[bool] = mapped_column(Boolean, default=False)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                              server_default=func.now())


class Post(Base):
    """One shared run: a bounded summary, never the raw history."""

    __tablename__ = "board_post"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("board_class.id", ondelete="CASCADE"),
                                          index=True)
    nickname: Mapped[str] = mapped_column(String(40))
    session: Mapped[str] = mapped_column(String(64))
    query: Mapped[str] = mapped_column(String(2000))
    depth: Mapped[int] = mapped_column(Integer)
    activation: Mapped[str] = mapped_column(String(32))
    init: Mapped[str] = mapped_column(String(32))
    steps: Mapped[int] = mapped_column(Integer)
    loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    accuracy: Mapped[float | None] = mapped_column(Float, nullable=True)
    grad_ratio: Mapped[float | None] = mapped_column(Float, nullable=True)
    diverged_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    delta_start: Mapped[list] = mapped_column(JSON)
    delta_end: Mapped[list] = mapped_column(JSON)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                              server_default=func.now())
