"""The ``hl7`` settings section: defaults, environment overrides, errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.errors import ConfigError
from bridge.hl7.feed import Feed
from bridge.settings import load_settings


def test_defaults_and_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.hl7.listen_port == 2575 and settings.hl7.listen_host == "127.0.0.1"
    assert settings.hl7.max_frame_bytes == 1024 * 1024
    monkeypatch.setenv("BRIDGE_HL7__LISTEN_PORT", "6661")
    monkeypatch.setenv("BRIDGE_HL7__OUTBOUND_HOST", "pas.example.test")
    settings = load_settings()
    assert settings.hl7.listen_port == 6661
    assert settings.hl7.outbound_host == "pas.example.test"


def test_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BRIDGE_HL7__LISTEN_PORT", "70000")
    with pytest.raises(ConfigError, match="BRIDGE_HL7__LISTEN_PORT"):
        load_settings()


def test_tls_needs_both_files(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("hl7:\n  tls_cert: cert.pem\n")
    with pytest.raises(ConfigError, match=r"hl7\.tls_key.*set tls_cert and tls_key together"):
        load_settings(path)


def test_the_feed_needs_a_mapping_of_kind_hl7(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("host:\n  source: hl7-mllp\n  mapping: openemr\n")
    settings = load_settings(path)
    with pytest.raises(ConfigError, match="needs a mapping of kind hl7"):
        Feed.from_settings(settings)
    path.write_text("host:\n  source: hl7-mllp\n  mapping: hl7-siu-nhs\n")
    feed = Feed.from_settings(load_settings(path))
    assert str(feed.zone) == "Europe/London"  # the mapping's, as clinic.timezone is empty
