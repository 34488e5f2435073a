"""HL7 v2 scheduling feeds (SIU, and ADT^A05 / A38 where a site sends those).

The flow, one direction:

    bytes (MLLP frame or dropped file)
      -> text: character set by MSH-18 with a safe fallback, segment terminators normalised
      -> parse: a small tolerant pipe parser (the hot path; hl7apy builds outbound messages)
      -> map + validate (``bridge.mapping.hl7``): business fields checked, a verdict
      -> store: the raw bytes and the verdict, durably, deduplicated on sender + MSH-10
      -> ACK (AA / AE / AR, or CA / CE / CR + application ACK in enhanced mode)
      -> mirror: the latest state of each appointment and patient, which the HL7 sources read
         exactly as the SQL source reads a host, so the planner never knows the difference.

This package imports nothing heavy at import time: the settings section lives here and is
imported by ``bridge.settings``.
"""
