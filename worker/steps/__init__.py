"""The step logic: plain functions from a `StepContext` to an `Outcome`, called by the tasks."""
