"""Collector: validates beacons and appends them to JSONL logs."""
