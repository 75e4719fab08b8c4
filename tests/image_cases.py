"""Encoded images for the decoding tests: good ones, and ones that start like an image but are broken."""

import io

import numpy as np
from PIL import Image


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


NOISE = Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8))
JPEG = encode(NOISE, "JPEG")
SCAN = JPEG.index(b"\xff\xda")  # start of the first scan: everything before it is headers
PROGRESSIVE = encode(NOISE, "JPEG", progressive=True)
GOOD = encode(Image.new("RGB", (30, 20), (200, 40, 90)))

# Each starts like an image but cannot be decoded: the whole batch used to fail on any of them.
CORRUPT = {
    "PNG signature + zeros": b"\x89PNG\r\n\x1a\n" + bytes(200),
    "GIF header + zeros": b"GIF89a" + bytes(200),
    "BMP header + zeros": b"BM" + bytes(200),
    "JPEG headers only": JPEG[:SCAN],
    "JPEG cut at 10 bytes": JPEG[:10],
    "JPEG cut at 200 bytes": JPEG[:200],
    "JPEG magic bytes only": b"\xff\xd8\xff",
    "PNG without its last chunk": encode(NOISE)[:-12],
    "PNG with zeroed image data": encode(NOISE)[:60] + bytes(len(encode(NOISE)) - 72) + encode(NOISE)[-12:],
    "GIF cut in half": encode(NOISE, "GIF")[: len(encode(NOISE, "GIF")) // 2],
    "BMP missing its last byte": encode(NOISE, "BMP")[:-1],
    "progressive JPEG cut in a scan header": PROGRESSIVE[: PROGRESSIVE.rindex(b"\xff\xda") + 4],
}
NOT_IMAGES = {
    "random bytes": bytes(np.random.default_rng(1).integers(0, 256, 500, dtype=np.uint8)),
    "text": "Ceci n’est pas une image.\n".encode(),
}
# Truncated but with their image data: decoded (libjpeg fills what is missing), so "ok".
RECOVERABLE = {
    "JPEG missing its last byte": JPEG[:-1],
    "JPEG missing its end marker": JPEG[:-2],
    "JPEG cut in its scan data": JPEG[: (SCAN + len(JPEG)) // 2],
    "GIF missing its trailer": encode(NOISE, "GIF")[:-1],
}
