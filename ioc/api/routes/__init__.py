"""One router per resource; ``ioc.api.main`` gathers them."""
