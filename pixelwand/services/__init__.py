"""Domain services: the operations the API offers, free of any transport."""
