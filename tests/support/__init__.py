"""Helpers shared by test suites (start the emulator as a subprocess, ...)."""
