"""The cloud side: validate, de-duplicate and store telemetry; the domain rules that use it."""
