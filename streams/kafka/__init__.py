"""Kafka plumbing shared by every command: client profiles, client factories, topics."""
