"""Encoded image bytes → model-ready pixels, inside exported graphs (core TensorFlow ops only).

Training and the exported `caption` signature both use `decode_images`, so a model sees the
same pixels from a file during training as from bytes sent by a user.
"""

from __future__ import annotations

import tensorflow as tf

# Largest image accepted (width × height): 6000 × 6000 decodes to ~108 MB of RGB; a
# decompression bomb (a small file claiming a huge size) is refused from its header alone.
MAX_PIXELS = 50_000_000

STATUS_OK, STATUS_NOT_IMAGE, STATUS_TOO_LARGE, STATUS_UNSUPPORTED = (
    "ok",
    "not an image",
    "too large",
    "unsupported",
)


def _byte_values(data, start: int, length: int) -> tf.Tensor:
    """Bytes `start … start+length` of a scalar string as int64 (zeros past the end)."""
    padded = tf.strings.join([data, tf.constant(b"\0" * (start + length))])  # short input: no error
    return tf.cast(tf.io.decode_raw(tf.strings.substr(padded, start, length), tf.uint8), tf.int64)


def _kind(data) -> tf.Tensor:
    """0 = JPEG, 1 = PNG, 2 = GIF, 3 = BMP, -1 = anything else (by the file's magic bytes)."""
    head = tf.strings.substr(data, 0, 8)
    return tf.case(
        [
            (tf.equal(tf.strings.substr(head, 0, 3), b"\xff\xd8\xff"), lambda: tf.constant(0)),
            (tf.equal(head, b"\x89PNG\r\n\x1a\n"), lambda: tf.constant(1)),
            (tf.equal(tf.strings.substr(head, 0, 4), b"GIF8"), lambda: tf.constant(2)),
            (tf.equal(tf.strings.substr(head, 0, 2), b"BM"), lambda: tf.constant(3)),
        ],
        default=lambda: tf.constant(-1),
    )


def _declared_pixels(data, kind) -> tf.Tensor:
    """Width × height as written in the file header, read without decoding the image."""

    def big_endian(b):
        return b[0] * 2**24 + b[1] * 2**16 + b[2] * 2**8 + b[3]

    def jpeg():
        shape = tf.io.extract_jpeg_shape(data, output_type=tf.int64)
        return shape[0] * shape[1]

    def png():
        b = _byte_values(data, 16, 8)
        return big_endian(b[:4]) * big_endian(b[4:])

    def gif():
        b = _byte_values(data, 6, 4)
        return (b[0] + 256 * b[1]) * (b[2] + 256 * b[3])

    def bmp():
        b = _byte_values(data, 18, 8)
        height = b[4] + 256 * b[5] + 65536 * b[6] + 16777216 * b[7]
        height = tf.where(height >= 2**31, 2**32 - height, height)  # negative: top-down rows
        return (b[0] + 256 * b[1] + 65536 * b[2] + 16777216 * b[3]) * height

    return tf.switch_case(tf.maximum(kind, 0), [jpeg, png, gif, bmp])


def _supported(data, kind) -> tf.Tensor:
    """False for BMPs with fewer than 24 bits per pixel: TF's BMP decoder ignores their palette."""
    bits = _byte_values(data, 28, 2)
    return tf.logical_or(tf.not_equal(kind, 3), bits[0] + 256 * bits[1] >= 24)


def _decode_rgb(data, kind) -> tf.Tensor:
    """Any supported image → uint8 RGB [h, w, 3]; PNG transparency is composited onto white."""

    def jpeg():
        # Recovers what it can of a truncated JPEG instead of failing the whole batch.
        return tf.io.decode_jpeg(data, channels=3, try_recover_truncated=True, acceptable_fraction=0.25)

    def png():
        rgba = tf.cast(tf.io.decode_png(data, channels=4), tf.float32)
        alpha = rgba[..., 3:] / 255.0
        return tf.cast(tf.round(rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)), tf.uint8)

    def gif():
        # The first frame only; decode_gif would decode every frame of an animation first.
        return tf.io.decode_image(data, channels=3, expand_animations=False)

    def bmp():
        return tf.io.decode_bmp(data, channels=3)

    return tf.switch_case(kind, [jpeg, png, gif, bmp])


def decode_images(images: tf.Tensor, size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Decodes and resizes a batch of encoded images (JPEG, PNG, GIF, BMP; any size and mode).

    Args:
        images: string tensor [batch] of encoded image bytes.
        size: output height and width (the aspect ratio is not kept, as in ImageNet training).

    Returns:
        pixels: float32 [batch, size, size, 3] in 0–255 (zeros for an image that was refused).
        status: string [batch]: "ok", "not an image", "too large" (over `MAX_PIXELS`) or
            "unsupported" (a BMP with a colour palette).

    Example:
    >>> png = tf.io.encode_png(tf.zeros([3, 5, 1], tf.uint8))
    >>> pixels, status = decode_images(tf.stack([png, tf.constant(b"hello")]), 8)
    >>> tuple(pixels.shape), status.numpy().tolist()
    ((2, 8, 8, 3), [b'ok', b'not an image'])
    """

    def one(data):
        kind = _kind(data)
        large = tf.cond(kind >= 0, lambda: _declared_pixels(data, kind) > MAX_PIXELS, lambda: False)
        supported = _supported(data, kind)
        ok = (kind >= 0) & tf.logical_not(large) & supported
        pixels = tf.cond(
            ok,
            lambda: tf.image.resize(_decode_rgb(data, kind), [size, size], antialias=True),
            lambda: tf.zeros([size, size, 3]),
        )
        status = tf.where(
            ok,
            STATUS_OK,
            tf.where(kind < 0, STATUS_NOT_IMAGE, tf.where(large, STATUS_TOO_LARGE, STATUS_UNSUPPORTED)),
        )
        return pixels, status

    images = tf.convert_to_tensor(images, tf.string)
    return tf.map_fn(
        one,
        images,
        fn_output_signature=(tf.TensorSpec([size, size, 3], tf.float32), tf.TensorSpec([], tf.string)),
    )
