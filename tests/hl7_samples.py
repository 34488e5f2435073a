"""HL7 test material: the published fixtures (``../shared/fixtures/hl7``, see its SOURCES.md)
by name, the built-in mappings, and synthetic SIU messages (synthetic patients only) for the
tests and the benchmark."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from bridge.mapping import mapping_path, read_mapping_data, validate_mapping
from bridge.mapping.hl7 import Hl7Mapping
from bridge.store import Store

FIXTURES = "fixtures/hl7"

#: Valid fixtures, in file order (all acknowledged AA).
VALID = [
    "01_ms_fhirconv_siu_s12_v28.hl7",
    "02_ms_fhirconv_siu_s12_v28_multi_rgs.hl7",
    "03_ms_fhirconv_siu_s13_v28.hl7",
    "04_ms_fhirconv_siu_s14_v28.hl7",
    "05_ms_fhirconv_siu_s15_v28.hl7",
    "06_ms_fhirconv_siu_s16_v28.hl7",
    "07_ms_fhirconv_siu_s17_v28.hl7",
    "08_ms_fhirconv_siu_s26_v28.hl7",
    "09_renalware_barts_siu_s12_v24.hl7",
    "10_renalware_barts_siu_s13_v24_undo_cancel.hl7",
    "11_renalware_barts_siu_s15_v24.hl7",
    "12_renalware_barts_siu_s26_v24_status_cancelled.hl7",
    "13_hapi_test_siu_s14_v23_orsos_4rgs.hl7",
    "14_corepoint_gpms_siu_s14_v23_arrived.hl7",
    "15_iris_training_orbis_siu_s14_v231_8859-1.hl7",
    "18_embe7_test_siu_s17_v24_tq1.hl7",
    "19_clicrdv_test_siu_s12_v251_utf8.hl7",
    "20_nhs_pas_style_siu_s12_v24_zsegments.hl7",
]

#: Malformed on purpose, with the HL7 error each one gets (M3 is the LF-terminated copy of 14:
#: once terminators are normalised it is a good message, and the same message as 14).
MALFORMED = {
    "M1_gmed_siu_s12_v231_missing_SCH.hl7": [100],
    "M2_ms_fhirconv_msh9_ADT_A60_with_SIU_body_LF.hl7": [201],
    "M4_embe7_test_second_MSH_without_encoding_chars.hl7": [100],
    "M5_embe7_test_two_mllp_frames_LF.mllp": [101, 101],
}
LF_COPY = "M3_corepoint_siu_s14_LF_terminators_asis.hl7"


def fixture(shared_dir: Path, name: str) -> bytes:
    """A fixture's bytes exactly as published (never read in text mode: CR would become LF)."""
    return (shared_dir / FIXTURES / name).read_bytes()


def mapping(name: str = "hl7-siu") -> Hl7Mapping:
    path = mapping_path(name)
    return validate_mapping(Hl7Mapping, read_mapping_data(path), path)


def siu(
    control_id: str,
    key: str,
    patient: str,
    start: datetime,
    *,
    event: str = "S12",
    status: str = "Booked",
    version: str = "2.5.1",
    sent: str = "20260327080000",
    mobile: str = "+12025550123",
    minutes: int = 30,
    provider: str = "P1^Rossi^Ada^^^Dr",
    sender: str = "SCHED",
    ack_modes: str = "",
) -> bytes:
    """A synthetic SIU message (CR terminators, no frame); times are clinic-local."""
    begin = start.strftime("%Y%m%d%H%M%S")
    end = datetime.fromtimestamp(start.timestamp() + minutes * 60).strftime("%Y%m%d%H%M%S")
    segments = [
        f"MSH|^~\\&|{sender}|CLINIC|BRIDGE|CLINIC|{sent}||SIU^{event}^SIU_S12|{control_id}|P|"
        f"{version}{ack_modes}",
        f"SCH|{key}-P|{key}||||NEW^New booking|CHECK^Check-up|ROUTINE|{minutes}|MIN|"
        f"^^{minutes}^{begin}^{end}||||||||||||||{status}",
        f"PID|1||{patient}^^^CLINIC^MR||Synthetic^Pat{patient}||19800101|F|||1 Test Street^^"
        f"Springfield^^12345||{mobile}^PRN^CP~pat{patient}@example.test^NET^Internet||eng",
        "RGS|1",
        "AIS|1||CHECK^Check-up|" + begin,
        "AIL|1||ROOM1^Room 1^^MAIN^^^Main clinic",
        f"AIP|1||{provider}",
    ]
    return ("\r".join(segments) + "\r").encode("utf-8")


@pytest.fixture(name="store")
def store_fixture(store_url: str) -> Iterator[Store]:
    """A fresh store on SQLite and on PostgreSQL (``store_url``), closed after the test."""
    opened = Store.open(store_url)
    yield opened
    opened.close()


def free_port() -> int:
    """A TCP port nothing listens on right now (for a listener started as a process)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def answers(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
