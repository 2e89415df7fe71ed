"""The `nemo-batch` command."""
