"""Reminder Bridge: appointment reminders and answers for an existing practice system."""

__version__ = "0.1.0"
