"""Kaowu's shared core: event store, relay, tracking, contracts, clock, logging, config."""
