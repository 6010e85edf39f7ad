"""Library code: parsers, mappings, settings. No Dagster definitions live here."""
