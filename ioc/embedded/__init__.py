"""Real services for dev and tests, started on demand: a Kafka-protocol broker
(Tansu) and a throwaway PostgreSQL cluster (with TimescaleDB when installed).

Standard library only, so ``ioc demo`` and the test fixtures can use them
without the rest of the stack.
"""

from ioc.embedded.broker import EmbeddedBroker
from ioc.embedded.ports import free_port
from ioc.embedded.postgres import EmbeddedPostgres

__all__ = ["EmbeddedBroker", "EmbeddedPostgres", "free_port"]
