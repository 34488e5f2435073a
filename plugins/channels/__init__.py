"""Channel plugins: deliver one rendered message to one patient contact."""
