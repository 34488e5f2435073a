"""Built-in plugins: sources, channels and writers, registered through entry points like any
other plugin."""
