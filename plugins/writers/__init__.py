"""Writer plugins: apply write-back commands to the host's appointment book."""
