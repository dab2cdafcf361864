"""The HTTP API: operators' console, police handhelds, Prometheus."""
