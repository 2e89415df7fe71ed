"""The pipeline: Celery tasks, step logic, the NemoVideo client, dispatch and recovery."""
