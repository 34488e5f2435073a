"""Model objects to JSON-ready dicts and back, for the store's snapshot ``data`` columns.

The store keeps whole snapshots because for a feed-driven host (HL7) the snapshot is the only
copy of the latest state the bridge will ever have.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from bridge.clock import as_utc
from bridge.model import Appointment, Channel, Consent, Patient, ReminderType, StatusClass


def appointment_to_dict(appt: Appointment) -> dict[str, Any]:
    return {
        "key": appt.key,
        "occurrence": appt.occurrence.isoformat(),
        "patient_key": appt.patient_key,
        "start": appt.start.isoformat(),
        "end": appt.end.isoformat() if appt.end else None,
        "status": appt.status,
        "status_class": appt.status_class.value,
        "eligible": appt.eligible,
        "all_day": appt.all_day,
        "provider_keys": list(appt.provider_keys),
        "facility_key": appt.facility_key,
        "service_key": appt.service_key,
        "room": appt.room,
        "notes": appt.notes,
        "recurring": appt.recurring,
        "host_keys": list(appt.host_keys),
    }


def appointment_from_dict(data: dict[str, Any]) -> Appointment:
    return Appointment(
        key=data["key"],
        occurrence=date.fromisoformat(data["occurrence"]),
        patient_key=data["patient_key"],
        start=as_utc(datetime.fromisoformat(data["start"])),
        end=as_utc(datetime.fromisoformat(data["end"])) if data.get("end") else None,
        status=data["status"],
        status_class=StatusClass(data["status_class"]),
        eligible=bool(data["eligible"]),
        all_day=bool(data.get("all_day", False)),
        provider_keys=tuple(data.get("provider_keys", ())),
        facility_key=data.get("facility_key"),
        service_key=data.get("service_key"),
        room=data.get("room", ""),
        notes=data.get("notes", ""),
        recurring=bool(data.get("recurring", False)),
        host_keys=tuple(data.get("host_keys", ())),
    )


def patient_to_dict(patient: Patient) -> dict[str, Any]:
    return {
        "key": patient.key,
        "first_name": patient.first_name,
        "last_name": patient.last_name,
        "mrn": patient.mrn,
        "birth_date": patient.birth_date.isoformat() if patient.birth_date else None,
        "sex": patient.sex,
        "language": patient.language,
        "mobile": patient.mobile,
        "home_phone": patient.home_phone,
        "work_phone": patient.work_phone,
        "email": patient.email,
        "bad_contacts": list(patient.bad_contacts),
        "deceased": patient.deceased,
        "consent": {channel.value: value.value for channel, value in patient.consent.items()},
        "preference": patient.preference.value if patient.preference else None,
        "street": patient.street,
        "city": patient.city,
        "postal_code": patient.postal_code,
    }


def patient_from_dict(data: dict[str, Any]) -> Patient:
    return Patient(
        key=data["key"],
        first_name=data.get("first_name", ""),
        last_name=data.get("last_name", ""),
        mrn=data.get("mrn", ""),
        birth_date=date.fromisoformat(data["birth_date"]) if data.get("birth_date") else None,
        sex=data.get("sex", ""),
        language=data.get("language", ""),
        mobile=data.get("mobile"),
        home_phone=data.get("home_phone"),
        work_phone=data.get("work_phone"),
        email=data.get("email"),
        bad_contacts=tuple(data.get("bad_contacts", ())),
        deceased=bool(data.get("deceased", False)),
        consent={Channel(k): Consent(v) for k, v in data.get("consent", {}).items()},
        preference=ReminderType(data["preference"]) if data.get("preference") else None,
        street=data.get("street", ""),
        city=data.get("city", ""),
        postal_code=data.get("postal_code", ""),
    )
