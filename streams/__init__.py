"""Darkroom: a Kafka stream processor that enriches photo uploads with computer vision."""

__version__ = "0.1.0"
