"""The floor of nemo-batch: settings, database, models, job states and storage."""
