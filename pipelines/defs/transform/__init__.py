"""dbt wiring: one translator owns asset keys and groups for every dbt node."""
