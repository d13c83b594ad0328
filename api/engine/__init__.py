"""Analysis engine: decoding, detection, emotion classification, tracking. Never imports Flask."""
