"""Detection-as-code: reading, validating, loading and exporting the `content/` folder."""
