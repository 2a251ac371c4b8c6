"""Monitoring: alerts, saved filters, aims, objectives, staffing, the worker's schedule.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "aims",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aims")),
        sa.UniqueConstraint("title", name=op.f("uq_aims_title")),
    )
    op.create_table(
        "alert_rules",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("scope_kind", sa.String(length=20), nullable=False),
        sa.Column("scope_id", _ID, nullable=True),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("frequency", sa.String(length=20), nullable=False),
        sa.Column("email_to", sa.Text(), nullable=True),
        sa.Column("webhook_url", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("covered_until", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
        sa.UniqueConstraint("name", name=op.f("uq_alert_rules_name")),
    )
    op.create_table(
        "saved_filters",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("query", sa.JSON(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_filters")),
        sa.UniqueConstraint("name", name=op.f("uq_saved_filters_name")),
    )
    op.create_table(
        "schedules",
        sa.Column("job", sa.String(length=200), nullable=False),
        sa.Column("every_seconds", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("next_run_at", _TIME, nullable=False),
        sa.Column("last_started_at", _TIME, nullable=True),
        sa.Column("last_finished_at", _TIME, nullable=True),
        sa.Column("last_status", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("job", name=op.f("pk_schedules")),
    )
    op.create_table(
        "worker_leases",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("acquired_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_worker_leases")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("dedup_key", sa.String(length=300), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("output_id", _ID, nullable=True),
        sa.Column("rule_id", _ID, nullable=True),
        sa.Column("raised_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["output_id"],
            ["outputs.id"],
            name=op.f("fk_alerts_output_id_outputs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["alert_rules.id"],
            name=op.f("fk_alerts_rule_id_alert_rules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_alerts_dedup_key")),
    )
    op.create_index(op.f("ix_alerts_output_id"), "alerts", ["output_id"], unique=False)
    op.create_index(op.f("ix_alerts_raised_at"), "alerts", ["raised_at"], unique=False)
    op.create_table(
        "objectives",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("aim_id", _ID, nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("kpi", sa.String(length=100), nullable=False),
        sa.Column("scope_kind", sa.String(length=20), nullable=False),
        sa.Column("scope_ids", sa.JSON(), nullable=False),
        sa.Column("scope_text", sa.Text(), nullable=False),
        sa.Column("target", sa.Float(), nullable=False),
        sa.Column("start_on", sa.Date(), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=False),
        sa.Column("owner", sa.String(length=300), nullable=True),
        sa.Column("owner_person_id", _ID, nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["aim_id"], ["aims.id"], name=op.f("fk_objectives_aim_id_aims"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["owner_person_id"],
            ["people.id"],
            name=op.f("fk_objectives_owner_person_id_people"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_objectives")),
    )
    op.create_index(op.f("ix_objectives_aim_id"), "objectives", ["aim_id"], unique=False)
    op.create_table(
        "alert_deliveries",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("alert_id", _ID, nullable=False),
        sa.Column("rule_id", _ID, nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", _TIME, nullable=True),
        sa.Column("claimed_until", _TIME, nullable=True),
        sa.Column("sent_at", _TIME, nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_deliveries_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["alert_rules.id"],
            name=op.f("fk_alert_deliveries_rule_id_alert_rules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
        sa.UniqueConstraint(
            "alert_id",
            "rule_id",
            "channel",
            name=op.f("uq_alert_deliveries_alert_id_rule_id_channel"),
        ),
    )
    op.create_index(
        op.f("ix_alert_deliveries_rule_id"), "alert_deliveries", ["rule_id"], unique=False
    )
    op.create_index(
        op.f("ix_alert_deliveries_status"), "alert_deliveries", ["status"], unique=False
    )
    op.create_table(
        "staffing",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("person_id", _ID, nullable=False),
        sa.Column("role", sa.String(length=100), nullable=False),
        sa.Column("hours_per_week", sa.Float(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_staffing_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_staffing_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staffing")),
        sa.UniqueConstraint(
            "account_id", "person_id", "role", name=op.f("uq_staffing_account_id_person_id_role")
        ),
    )
    op.create_index(op.f("ix_staffing_account_id"), "staffing", ["account_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_staffing_account_id"), table_name="staffing")
    op.drop_table("staffing")
    op.drop_index(op.f("ix_alert_deliveries_status"), table_name="alert_deliveries")
    op.drop_index(op.f("ix_alert_deliveries_rule_id"), table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
    op.drop_index(op.f("ix_objectives_aim_id"), table_name="objectives")
    op.drop_table("objectives")
    op.drop_index(op.f("ix_alerts_raised_at"), table_name="alerts")
    op.drop_index(op.f("ix_alerts_output_id"), table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("worker_leases")
    op.drop_table("schedules")
    op.drop_table("saved_filters")
    op.drop_table("alert_rules")
    op.drop_table("aims")
