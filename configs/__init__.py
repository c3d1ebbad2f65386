"""Per-sim configs: every field documented and validated, with named presets."""
