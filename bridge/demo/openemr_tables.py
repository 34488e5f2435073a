"""OpenEMR-shaped tables (the columns the bridge reads and writes), for the demo host and tests.

Column names and types follow OpenEMR's ``sql/database.sql``. ``legacy=True`` builds them as an
older OpenEMR (6.x) has them: no ``uuid`` columns, no ``patient_data.last_updated`` and
``pc_endDate`` NOT NULL defaulting to ``'0000-00-00'``, so the same tests prove the mapping works
on old sites. On SQLite the same definitions build the embedded demo host.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Engine,
    Enum,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    Time,
    text,
)

TABLES = (
    "openemr_postcalendar_events",
    "openemr_postcalendar_categories",
    "patient_data",
    "users",
    "facility",
    "list_options",
    "globals",
    "notification_log",
    "patient_tracker",
    "patient_tracker_element",
    "pnotes",
    "medex_recalls",
)


def openemr_metadata(*, legacy: bool = False) -> MetaData:
    """Table definitions for the demo host or a test database."""
    metadata = MetaData()

    def uuid() -> list[Column[bytes]]:
        return [] if legacy else [Column("uuid", LargeBinary(16), nullable=True)]

    Table(
        "openemr_postcalendar_events",
        metadata,
        Column("pc_eid", Integer, primary_key=True, autoincrement=True),
        Column("pc_catid", Integer, nullable=False, server_default="0"),
        Column("pc_multiple", Integer, nullable=False),
        Column("pc_aid", String(30)),
        Column("pc_pid", String(11)),
        Column("pc_gid", Integer, server_default="0"),
        Column("pc_title", String(150)),
        Column("pc_time", DateTime),
        Column("pc_hometext", Text),
        Column("pc_eventDate", Date, nullable=False),
        (
            Column("pc_endDate", Date, nullable=False, server_default="0000-00-00")
            if legacy
            else Column("pc_endDate", Date, nullable=True)
        ),
        Column("pc_duration", BigInteger, nullable=False, server_default="0"),
        Column("pc_recurrtype", Integer, nullable=False, server_default="0"),
        Column("pc_recurrspec", Text),
        Column("pc_recurrfreq", Integer, nullable=False, server_default="0"),
        Column("pc_startTime", Time),
        Column("pc_endTime", Time),
        Column("pc_alldayevent", Integer, nullable=False, server_default="0"),
        Column("pc_eventstatus", Integer, nullable=False, server_default="0"),
        Column("pc_sharing", Integer, nullable=False, server_default="0"),
        Column("pc_apptstatus", String(15), nullable=False, server_default="-"),
        Column("pc_prefcatid", Integer, nullable=False, server_default="0"),
        Column("pc_facility", Integer, nullable=False, server_default="0"),
        Column("pc_sendalertsms", String(3), nullable=False, server_default="NO"),
        Column("pc_sendalertemail", String(3), nullable=False, server_default="NO"),
        Column("pc_billing_location", SmallInteger, nullable=False, server_default="0"),
        *([] if legacy else [Column("pc_room", String(20), nullable=False, server_default="")]),
        *uuid(),
        # OpenEMR's own indexes on this table (sql/database.sql).
        Index(
            "basic_event",
            "pc_catid",
            "pc_aid",
            "pc_eventDate",
            "pc_endDate",
            "pc_eventstatus",
            "pc_sharing",
        ),
        Index("pc_eventDate", "pc_eventDate"),
    )
    Table(
        "openemr_postcalendar_categories",
        metadata,
        Column("pc_catid", Integer, primary_key=True, autoincrement=True),
        Column("pc_constant_id", String(255)),
        Column("pc_catname", String(100)),
        Column("pc_catcolor", String(50)),
        Column("pc_catdesc", Text),
        Column("pc_recurrtype", Integer, nullable=False, server_default="0"),
        Column("pc_duration", BigInteger, nullable=False, server_default="0"),
        Column("pc_cattype", Integer, nullable=False),
        Column("pc_active", SmallInteger, nullable=False, server_default="1"),
        Column("pc_seq", Integer, nullable=False, server_default="0"),
    )
    patient_columns: list[Column[Any]] = [
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
        *uuid(),
        Column("title", String(255), nullable=False, server_default=""),
        Column("language", String(255), nullable=False, server_default=""),
        Column("fname", String(255), nullable=False, server_default=""),
        Column("lname", String(255), nullable=False, server_default=""),
        Column("mname", String(255), nullable=False, server_default=""),
        Column("DOB", Date),
        Column("street", String(255), nullable=False, server_default=""),
        Column("postal_code", String(255), nullable=False, server_default=""),
        Column("city", String(255), nullable=False, server_default=""),
        Column("state", String(255), nullable=False, server_default=""),
        Column("phone_home", String(255), nullable=False, server_default=""),
        Column("phone_biz", String(255), nullable=False, server_default=""),
        Column("phone_contact", String(255), nullable=False, server_default=""),
        Column("phone_cell", String(255), nullable=False, server_default=""),
        Column("sex", String(255), nullable=False, server_default=""),
        Column("providerID", Integer),
        Column("email", String(255), nullable=False, server_default=""),
        Column("pubpid", String(255), nullable=False, server_default=""),
        Column("pid", BigInteger, nullable=False, server_default="0", unique=True),
        Column("hipaa_mail", String(3), nullable=False, server_default=""),
        Column("hipaa_voice", String(3), nullable=False, server_default=""),
        Column("hipaa_notice", String(3), nullable=False, server_default=""),
        Column("hipaa_message", String(20), nullable=False, server_default=""),
        Column("hipaa_allowsms", String(3), nullable=False, server_default="NO"),
        Column("hipaa_allowemail", String(3), nullable=False, server_default="NO"),
        Column("deceased_date", DateTime),
        Column("deceased_reason", String(255), nullable=False, server_default=""),
    ]
    if not legacy:
        patient_columns.append(
            Column(
                "last_updated",
                DateTime,
                nullable=False,
                server_default=text("CURRENT_TIMESTAMP"),
            )
        )
    Table("patient_data", metadata, *patient_columns)
    Table(
        "users",
        metadata,
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
        Column("username", String(255)),
        Column("authorized", SmallInteger),
        Column("fname", String(255)),
        Column("mname", String(255)),
        Column("lname", String(255)),
        Column("facility_id", Integer, nullable=False, server_default="0"),
        Column("active", SmallInteger, nullable=False, server_default="1"),
        Column("title", String(30)),
        Column("specialty", String(255)),
        Column("email", String(255)),
        Column("phone", String(30)),
        Column("calendar", SmallInteger, nullable=False, server_default="0"),
    )
    Table(
        "facility",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("name", String(255)),
        Column("phone", String(30)),
        Column("street", String(255)),
        Column("city", String(255)),
        Column("state", String(50)),
        Column("postal_code", String(11)),
        Column("website", String(255)),
        Column("email", String(255)),
        Column("info", Text),
    )
    Table(
        "list_options",
        metadata,
        Column("list_id", String(100), primary_key=True, server_default=""),
        Column("option_id", String(100), primary_key=True, server_default=""),
        Column("title", String(255), nullable=False, server_default=""),
        Column("seq", Integer, nullable=False, server_default="0"),
        Column("is_default", SmallInteger, nullable=False, server_default="0"),
        Column("option_value", Float, nullable=False, server_default="0"),
        Column("notes", Text),
        Column("toggle_setting_1", SmallInteger, nullable=False, server_default="0"),
        Column("toggle_setting_2", SmallInteger, nullable=False, server_default="0"),
        Column("activity", SmallInteger, nullable=False, server_default="1"),
    )
    Table(
        "globals",
        metadata,
        Column("gl_name", String(63), primary_key=True),
        Column("gl_index", Integer, primary_key=True, server_default="0"),
        Column("gl_value", String(255), nullable=False, server_default=""),
    )
    Table(
        "notification_log",
        metadata,
        Column("iLogId", Integer, primary_key=True, autoincrement=True),
        Column("pid", BigInteger, nullable=False),
        Column("pc_eid", Integer),
        Column("sms_gateway_type", String(50), nullable=False),
        Column("smsgateway_info", String(255), nullable=False),
        Column("message", Text),
        Column("email_sender", String(255), nullable=False),
        Column("email_subject", String(255), nullable=False),
        Column("type", Enum("SMS", "Email", name="notification_type"), nullable=False),
        Column("patient_info", Text),
        Column("pc_eventDate", Date, nullable=False),
        Column("pc_endDate", Date, nullable=False),
        Column("pc_startTime", Time, nullable=False),
        Column("pc_endTime", Time, nullable=False),
        Column("dSentDateTime", DateTime, nullable=False),
    )
    # Where write-back reaches the front desk: the Flow Board and staff notes (Messages).
    Table(
        "patient_tracker",
        metadata,
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
        Column("date", DateTime),
        Column("apptdate", Date),
        Column("appttime", Time),
        Column("eid", BigInteger, nullable=False, server_default="0"),
        Column("pid", BigInteger, nullable=False, server_default="0"),
        Column("original_user", String(255), nullable=False, server_default=""),
        Column("encounter", BigInteger, nullable=False, server_default="0"),
        Column("lastseq", String(4), nullable=False, server_default=""),
        Column("random_drug_test", SmallInteger),
        Column("drug_screen_completed", SmallInteger, nullable=False, server_default="0"),
        Index("ix_patient_tracker_eid", "eid"),
    )
    Table(
        "patient_tracker_element",
        metadata,
        Column("pt_tracker_id", BigInteger, nullable=False, server_default="0"),
        Column("start_datetime", DateTime),
        Column("room", String(20), nullable=False, server_default=""),
        Column("status", String(31), nullable=False, server_default=""),
        Column("seq", String(4), nullable=False, server_default=""),
        Column("user", String(255), nullable=False, server_default=""),
        Index("ix_patient_tracker_element", "pt_tracker_id", "seq"),
    )
    Table(
        "pnotes",
        metadata,
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
        Column("date", DateTime),
        Column("body", Text),
        Column("pid", BigInteger),
        Column("user", String(255)),
        Column("groupname", String(255)),
        Column("activity", SmallInteger),
        Column("authorized", SmallInteger),
        Column("title", String(255)),
        Column("assigned_to", String(255)),
        Column("deleted", SmallInteger, server_default="0"),
        Column("message_status", String(20), nullable=False, server_default="New"),
        Column("update_by", BigInteger),
        Column("update_date", DateTime),
        Index("ix_pnotes_pid", "pid"),
    )
    Table(  # the Recall Board (Messages > Recalls): recalls staff set by hand
        "medex_recalls",
        metadata,
        Column("r_ID", Integer, primary_key=True),
        Column("r_PRACTID", Integer, nullable=False, server_default="0"),
        Column("r_pid", Integer, nullable=False),
        Column("r_eventDate", Date, nullable=False),
        Column("r_facility", Integer, nullable=False, server_default="0"),
        Column("r_provider", Integer, nullable=False, server_default="0"),
        Column("r_reason", String(255)),
        Column("r_created", DateTime),
    )
    return metadata


def create_openemr_tables(engine: Engine, *, legacy: bool = False) -> MetaData:
    """Create the tables on ``engine``; on MySQL/MariaDB ``last_updated`` updates itself as in
    OpenEMR (``ON UPDATE CURRENT_TIMESTAMP``)."""
    metadata = openemr_metadata(legacy=legacy)
    metadata.create_all(engine)
    if engine.dialect.name in ("mysql", "mariadb") and not legacy:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "ALTER TABLE patient_data MODIFY last_updated DATETIME NOT NULL "
                    "DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP"
                )
            )
    return metadata
