"""The fault scenarios by name, without their machinery, so the CLI can offer them without loading it."""

SCENARIOS = (
    "broker_restart",
    "registry_unavailable",
    "object_store",
    "consumer_crash",
    "network_partition",
    "graceful_shutdown",
)
SOAK_FAULTS = SCENARIOS[:5]
"""What the chaos soak picks from: the faults a live pipeline meets unannounced."""
