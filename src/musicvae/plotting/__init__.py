"""Pictures of grooves and training runs (matplotlib Agg, written atomically as PNG files)."""
