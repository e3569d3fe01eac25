"""Kafka message headers Darkroom reads or writes."""

FORCE = "darkroom-force"  # "1": enrich again even if this photo is done with these models
REPLAY_ID = "darkroom-replay-id"  # which replay run wrote this message
REPLAY_SOURCE = "darkroom-replay-source"  # "<topic>/<partition>/<offset>" it was replayed from
