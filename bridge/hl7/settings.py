"""The ``hl7`` settings section: the MLLP listener, the folder feed and the outbound link.

Defaults suit a feed on the same machine; a hospital engine elsewhere needs ``listen_host:
0.0.0.0`` (and, across a network nobody controls, TLS).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator

from bridge.settings_values import OptionalText, Section

DEFAULT_PORT = 2575  # the port IANA registered for HL7 over MLLP


class Hl7Settings(Section):
    """HL7 v2 feeds: the MLLP listener, the folder source and write-back over MLLP."""

    listen_host: str = Field("127.0.0.1", description="Address the MLLP listener binds.")
    listen_port: int = Field(DEFAULT_PORT, ge=1, le=65535, description="MLLP listener port.")
    listen_in_run: bool = Field(
        True,
        description="`bridge run` starts the listener when host.source is hl7-mllp "
        "(false when `bridge listen` runs as its own process).",
    )
    tls_cert: Path | None = Field(None, description="TLS certificate (PEM) for the listener.")
    tls_key: Path | None = Field(
        None, validate_default=True, description="TLS private key (PEM) for the listener."
    )
    tls_client_ca: Path | None = Field(
        None, description="CA bundle; when set, senders must present a certificate it signed."
    )
    max_frame_kb: int = Field(
        1024, ge=4, le=65536, description="Largest accepted message; a larger one gets AE."
    )
    idle_timeout_seconds: float = Field(
        300, gt=0, description="Close a connection that sends nothing for this long."
    )
    max_connections: int = Field(
        64, ge=1, le=4096, description="Senders connected at once; more are refused."
    )
    store_timeout_seconds: float = Field(
        5,
        gt=0,
        description="When the store has failed, or kept received messages waiting this long, "
        "new messages are answered AR (resend) until it takes them again.",
    )
    journal: Path = Field(
        Path("var/hl7-journal"),
        description="Folder where each received message is kept (synced) before its ACK, until "
        "the store holds it; on the local disk, one listener per folder.",
    )
    charset: str = Field(
        "utf-8", description="Character set of messages whose MSH-18 is empty or unknown."
    )
    folder: Path | None = Field(
        None, description="Folder the host drops message files into (source hl7-files)."
    )
    folder_poll_seconds: float = Field(2, gt=0, description="How often the folder is read.")
    folder_settle_seconds: float = Field(
        1, ge=0, description="A file younger than this may still be written; it waits."
    )
    outbound_host: OptionalText = Field(
        None, description="Host's inbound MLLP address for write-back (writer hl7)."
    )
    outbound_port: int | None = Field(
        None, ge=1, le=65535, description="Host's inbound MLLP port for write-back."
    )
    outbound_tls: bool = Field(False, description="Write back over TLS.")
    outbound_tls_ca: Path | None = Field(
        None, description="CA bundle to verify the host's certificate (default: system CAs)."
    )
    connect_timeout_seconds: float = Field(
        10, gt=0, description="Give up connecting to the host's inbound port after this long."
    )
    ack_timeout_seconds: float = Field(
        30, gt=0, description="Wait this long for the host's ACK; then retry later."
    )

    @field_validator("tls_key")
    @classmethod
    def _key_with_cert(cls, key: Path | None, info: ValidationInfo) -> Path | None:
        if (key is None) != (info.data.get("tls_cert") is None):
            raise ValueError("set tls_cert and tls_key together")
        return key

    @property
    def max_frame_bytes(self) -> int:
        return self.max_frame_kb * 1024
