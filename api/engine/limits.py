"""What one upload may cost: checked before any pixel is decoded (api.wiring.config reads them from the environment)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Checked before any pixel is decoded, so hostile files cost almost nothing."""

    max_upload_bytes: int = 50 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_image_side: int = 12_000
    max_video_seconds: float = 60.0
    max_video_frames: int = 3_600
    max_video_pixels: int = 4096 * 2160
    # An animated GIF's canvas x frames: Pillow composes each frame onto the whole canvas, about
    # 100 Mpx per second of CPU, so this bounds a GIF's decoding to a few seconds.
    max_gif_pixels: int = 250_000_000

    @property
    def max_request_bytes(self) -> int:
        """Largest request body read at all (Flask's MAX_CONTENT_LENGTH, nginx's client_max_body_size): a
        JSON body carries the upload in base64 (4/3 larger) plus options; the engine checks the exact
        byte limit after decoding."""
        return int(self.max_upload_bytes * 4 / 3) + 64 * 1024
