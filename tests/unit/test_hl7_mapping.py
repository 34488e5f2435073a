"""The ``kind: hl7`` mapping model: both shipped mappings load; mistakes name file and path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.errors import MappingError
from bridge.mapping import mapping_path, read_mapping_data, validate_mapping
from bridge.mapping.hl7 import Candidate, Hl7Mapping, check_template
from bridge.model import StatusClass


def load(tmp_path: Path, data: dict[str, Any]) -> Hl7Mapping:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data))
    return validate_mapping(Hl7Mapping, read_mapping_data(path), path)


def generic() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(mapping_path("hl7-siu").read_text())
    return data


@pytest.mark.parametrize("name", ["hl7-siu", "hl7-siu-nhs"])
def test_shipped_mappings_load(name: str) -> None:
    path = mapping_path(name)
    mapping = validate_mapping(Hl7Mapping, read_mapping_data(path), path)
    assert mapping.kind == "hl7"
    assert mapping.events["SIU^S12"] == "booked"
    assert mapping.events["SIU^S26"] == "no_show"
    assert mapping.writeback.template_for("confirm") is not None
    assert mapping.writeback.template_for("opt_out") is None


def test_candidates_accept_one_field_a_list_or_version_limits(tmp_path: Path) -> None:
    data = generic()
    data["appointment"]["key"] = "SCH-1.1"
    mapping = load(tmp_path, data)
    assert [c.field for c in mapping.appointment.key] == ["SCH-1.1"]
    tq1 = mapping.appointment.start[0]
    assert tq1.field == "TQ1-7.1"
    assert not tq1.applies_to("2.4") and tq1.applies_to("2.5") and tq1.applies_to("2.8")
    assert Candidate(field="SCH-1", until_version="2.4").applies_to("2.3.1")
    assert not Candidate(field="SCH-1", until_version="2.4").applies_to("2.5.1")


def test_status_spellings_and_meanings() -> None:
    mapping = Hl7Mapping.model_validate(generic())
    assert mapping.status_code("ARRIVED") == "Arrived"
    assert mapping.status_code("noshow") == "Noshow"
    assert mapping.status_code("Local7") == "Local7"
    assert mapping.statuses.classify("Arrived") == StatusClass.CHECKED_IN
    assert mapping.statuses.host_status("Confirmed").eligible


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["appointment"].update(key="SCH2"), "appointment.key.0.field"),
        (lambda d: d["appointment"].update(colour="red"), "appointment.colour: unknown key"),
        (lambda d: d["events"].update({"S12": "booked"}), "is not a message type and event"),
        (lambda d: d["events"].update({"SIU^S99": "exploded"}), "events.SIU^S99"),
        (
            lambda d: d["statuses"].update(host_list={"table": "t", "code": "c", "title": "t"}),
            "an HL7 feed has no status table",
        ),
        (
            lambda d: d["writeback"]["commands"]["confirm"]["set"].update({"SCH-6": "{channel.x}"}),
            "placeholder {channel.x} is not one of",
        ),
        (
            lambda d: d["writeback"]["commands"]["confirm"].update(note="{patient_name}"),
            "placeholder {patient_name} is not one of",
        ),
        (
            lambda d: d["writeback"]["commands"]["confirm"].update(segments={"PID": ["x"]}),
            "only Z-segments",
        ),
        (
            lambda d: d["writeback"]["commands"]["confirm"].update(message="ADT^A08"),
            "writeback.commands.confirm.message",
        ),
        (lambda d: d.update(version=2), "version = 2: expected 1"),
    ],
)
def test_mistakes_name_the_file_and_the_dotted_path(
    tmp_path: Path, change: Any, message: str
) -> None:
    data = generic()
    change(data)
    with pytest.raises(MappingError) as caught:
        load(tmp_path, data)
    assert str(caught.value).startswith(str(tmp_path / "site.yaml"))
    assert message in str(caught.value)


def test_templates_allow_the_vocabulary_only() -> None:
    check_template("Confirmed by {channel} at {at}: {reason}")
    for bad in ("{0}", "{channel!r}", "{at:%Y}", "{__class__}", "{channel"):
        with pytest.raises(ValueError):
            check_template(bad)
