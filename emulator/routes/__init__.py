"""HTTP routes, one module per resource of nemo-api.md, plus the /_emulator control routes."""
