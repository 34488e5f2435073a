"""Vendor-editable mapping files shipped with the bridge (``openemr.yaml`` and others)."""
