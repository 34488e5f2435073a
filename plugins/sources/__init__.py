"""Source plugins: read a host's appointments and patients into the canonical model."""
