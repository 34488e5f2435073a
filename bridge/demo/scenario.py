"""The demo's story: a small clinic's next few days, with the cases a front desk meets, and a
patient due for a recall who can book online.

Every patient is synthetic (``example.test`` addresses, ``202-555-01xx`` numbers).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine

from bridge.demo.host import IN_OFFICE, OpenEmrHost, Repeat
from bridge.demo.openemr_tables import create_openemr_tables


def seed_demo_host(url: str, timezone: str, now: datetime) -> OpenEmrHost:
    """Create the OpenEMR tables at ``url`` and fill them with the demo's week."""
    engine = create_engine(url)
    create_openemr_tables(engine)
    host = OpenEmrHost(engine)
    host.seed_reference(timezone)
    today = now.astimezone(ZoneInfo(timezone)).date()
    tomorrow, day2, day3 = (today + timedelta(days=n) for n in (1, 2, 3))

    host.add_facility(
        1,
        "Demo Family Clinic",
        phone="(202) 555-0199",
        street="1 Example Way",
        city="Springfield",
        state="DC",
        postal_code="20001",
        info="Please check in at the front desk.",
    )
    host.add_provider(1, "Ada", "Rossi", title="Dr.", facility_id=1)
    host.add_provider(2, "Ben", "Okafor", title="Dr.", facility_id=1)

    host.add_patient(1, "Alice", "Sample")
    host.add_patient(2, "Marco", "Prova", language="italian")
    host.add_patient(3, "Lucia", "Ejemplo", language="spanish")
    host.add_patient(4, "Claire", "Exemple", language="french")
    host.add_patient(5, "Noah", "Private", hipaa_allowsms="NO", hipaa_allowemail="NO")
    host.add_patient(6, "Wrong", "Number", phone_cell="12", email="")
    host.add_patient(7, "Grace", "Group")
    host.add_patient(8, "Cancel", "Led")
    host.add_patient(9, "Later", "Visit")

    host.add_appointment(1, tomorrow, "09:00", provider=1)
    host.add_appointment(2, tomorrow, "10:30", provider=2)
    host.add_appointment(3, day2, "11:00", provider=1, minutes=30)
    # A weekly series with next week's visit excluded, as OpenEMR writes it.
    excluded = (day3 + timedelta(days=7)).strftime("%Y%m%d")
    host.add_appointment(
        4,
        day3,
        "14:00",
        provider=2,
        repeat=Repeat(kind=1, freq=1, freq_type=1, exdates=(excluded,)),
        end_date=day3 + timedelta(days=60),
    )
    host.add_appointment(5, tomorrow, "15:00", provider=1)
    host.add_appointment(6, day2, "16:00", provider=2)
    host.add_group_visit(7, day2, "09:30", providers=(1, 2))
    host.add_appointment(8, tomorrow, "11:30", provider=1, status="x")
    host.add_appointment(9, today + timedelta(days=10), "10:00", provider=1)
    # Due for a recall: an office visit seven months ago and nothing booked since.
    host.add_patient(10, "Rita", "Recall")
    host.add_appointment(10, today - timedelta(days=212), "09:00", provider=1, status="@")
    # The providers' "In Office" blocks (calendar events without a patient) on the next two
    # weeks' workdays: what the booking pages offer.
    for offset in range(1, 15):
        day = today + timedelta(days=offset)
        if day.weekday() < 5:
            for provider in (1, 2):
                host.add_appointment(
                    None, day, "08:00", provider=provider, catid=IN_OFFICE, minutes=600
                )
    return host
