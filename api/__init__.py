"""The intake API: auth, validation, batches, jobs, assets and downloads (FastAPI)."""
