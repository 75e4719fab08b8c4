"""Encoded image bytes → model-ready pixels, inside exported graphs (core TensorFlow ops only).

Training and the exported `caption` signature both use `decode_images`, so a model sees the
same pixels from a file during training as from bytes sent by a user.

One bad image never costs the others their result: each image's structure (PNG chunks, JPEG
segments, GIF blocks, BMP sizes) is walked before decoding, so one that starts like an image but
cannot be decoded gets the status "corrupt" from its bytes alone; the decoders then run in a
`tf.data` pipeline that drops (and reports as "corrupt") any image that still fails, such as a
PNG whose compressed data is damaged, instead of failing the batch.
"""

from __future__ import annotations

import tensorflow as tf

# Largest image accepted (width × height): 6000 × 6000 decodes to ~108 MB of RGB; a
# decompression bomb (a small file claiming a huge size) is refused from its header alone.
MAX_PIXELS = 50_000_000

STATUS_OK, STATUS_NOT_IMAGE, STATUS_CORRUPT, STATUS_TOO_LARGE, STATUS_UNSUPPORTED = (
    "ok",
    "not an image",
    "corrupt",
    "too large",
    "unsupported",
)
JPEG, PNG, GIF, BMP = range(4)

# Start-of-frame markers (they carry the image size): C0–CF less DHT (C4), JPG (C8) and DAC (CC).
_JPEG_SOF = [m for m in range(0xC0, 0xD0) if m not in (0xC4, 0xC8, 0xCC)]
# Walk states: still walking, reached the part that must be there, found a structural error.
_WALKING, _COMPLETE, _BROKEN = 0, 1, 2


class _Bytes:
    """Reads single bytes of a scalar string at runtime positions; 0 past the end, never an error."""

    def __init__(self, data: tf.Tensor):
        self.length = tf.cast(tf.strings.length(data), tf.int64)
        # One trailing zero is the value read anywhere past the end.
        self._values = tf.io.decode_raw(tf.strings.join([data, "\0"]), tf.uint8)

    def values(self, position, width: int) -> tf.Tensor:
        """int64 [width]: the bytes from `position` on."""
        positions = tf.clip_by_value(
            tf.cast(position, tf.int64) + tf.range(width, dtype=tf.int64), 0, self.length
        )
        return tf.cast(tf.gather(self._values, positions), tf.int64)

    def __call__(self, position) -> tf.Tensor:
        return self.values(position, 1)[0]

    def big_endian(self, position, width: int) -> tf.Tensor:
        return tf.reduce_sum(self.values(position, width) * [256**i for i in reversed(range(width))])

    def little_endian(self, position, width: int) -> tf.Tensor:
        return tf.reduce_sum(self.values(position, width) * [256**i for i in range(width)])

    def equals(self, position, expected: bytes) -> tf.Tensor:
        return tf.reduce_all(tf.equal(self.values(position, len(expected)), list(expected)))


def _walk(step, start, extra) -> tuple[tf.Tensor, tuple]:
    """Runs `step(position, *extra) -> (state, position, *extra)` from `start` until it stops walking.

    Every step advances at least one byte, so a walk ends within the file's length.
    """
    state, _, *extra = tf.while_loop(
        lambda state, *_: tf.equal(state, _WALKING),
        lambda state, position, *extra: step(position, *extra),
        (tf.constant(_WALKING), tf.cast(start, tf.int64), *extra),
    )
    return state, tuple(extra)


def _jpeg(b: _Bytes) -> tuple[tf.Tensor, tf.Tensor]:
    """(intact, width × height): SOI, well-formed segments up to a complete SOS, a SOF before it.

    The entropy-coded data after SOS is not walked: libjpeg recovers truncated scans
    (`try_recover_truncated`), so a file cut after its headers still decodes.
    """

    def step(position, frame_seen, pixels):
        marker = b(position + 1)
        fill = tf.equal(marker, 0xFF)  # FF FF …: padding before a marker
        standalone = ((marker >= 0xD0) & (marker <= 0xD7)) | tf.equal(marker, 0x01)
        end = position + 2 + b.big_endian(position + 2, 2)
        segment = (b.big_endian(position + 2, 2) >= 2) & (end <= b.length)
        frame = tf.reduce_any(tf.equal(marker, _JPEG_SOF)) & segment
        pixels = tf.where(frame, b.big_endian(position + 5, 2) * b.big_endian(position + 7, 2), pixels)
        broken = tf.not_equal(b(position), 0xFF) | ~(fill | standalone | segment) | tf.equal(marker, 0xD9)
        state = tf.where(broken, _BROKEN, tf.where(tf.equal(marker, 0xDA) & segment, _COMPLETE, _WALKING))
        position = tf.where(fill, position + 1, tf.where(standalone, position + 2, end))
        return state, position, frame_seen | frame, pixels

    state, (frame_seen, pixels) = _walk(step, 2, (tf.constant(False), tf.constant(0, tf.int64)))
    return tf.equal(state, _COMPLETE) & frame_seen & (pixels > 0), pixels


def _png(b: _Bytes) -> tuple[tf.Tensor, tf.Tensor]:
    """(intact, width × height): an IHDR chunk first, every chunk within the file, an IDAT, an IEND.

    CRCs are not checked here; damaged compressed data is caught when decoding.
    """

    def step(position, image_data):
        end = position + 12 + b.big_endian(position, 4)
        state = tf.where(
            end > b.length, _BROKEN, tf.where(b.equals(position + 4, b"IEND"), _COMPLETE, _WALKING)
        )
        return state, end, image_data | b.equals(position + 4, b"IDAT")

    state, (image_data,) = _walk(step, 8, (tf.constant(False),))
    header = b.equals(8, b"\0\0\0\x0dIHDR")
    pixels = b.big_endian(16, 4) * b.big_endian(20, 4)
    return header & tf.equal(state, _COMPLETE) & image_data & (pixels > 0), pixels


def _gif(b: _Bytes) -> tuple[tf.Tensor, tf.Tensor]:
    """(intact, width × height): a header, then extension and image blocks whose data sub-blocks all
    fit, up to the trailer (or the end of the file, which TF's decoder accepts too), one image at least.
    """

    def colour_table(flags):
        return tf.where(flags >= 0x80, 3 * 2 ** (flags % 8 + 1), 0)

    def step(position, in_data, images):
        block = b(position)
        # In data: sub-blocks of 1 + size bytes, a zero size ends them.
        in_data_state = tf.where(position >= b.length, _BROKEN, _WALKING)
        data_position = position + 1 + block
        # Between blocks: an image (descriptor, optional colour table, LZW code size) or an extension.
        image = tf.equal(block, 0x2C)
        extension = tf.equal(block, 0x21)
        at_end = tf.equal(position, b.length) | tf.equal(block, 0x3B)
        block_state = tf.where(at_end, _COMPLETE, tf.where(image | extension, _WALKING, _BROKEN))
        block_position = tf.where(image, position + 11 + colour_table(b(position + 9)), position + 2)
        return (
            tf.where(in_data, in_data_state, block_state),
            tf.where(in_data, data_position, block_position),
            tf.where(in_data, block > 0, image | extension),
            images + tf.cast(~in_data & image, tf.int64),
        )

    header = b.equals(0, b"GIF87a") | b.equals(0, b"GIF89a")
    start = 13 + colour_table(b(10))
    state, (_, images) = _walk(step, start, (tf.constant(False), tf.constant(0, tf.int64)))
    pixels = b.little_endian(6, 2) * b.little_endian(8, 2)
    return header & tf.equal(state, _COMPLETE) & (images > 0) & (pixels > 0), pixels


def _bmp(b: _Bytes) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(intact, width × height, supported): the checks TF's BMP decoder makes, on the header alone.

    Supported means 24 or 32 bits per pixel: the decoder ignores the palette of smaller depths.
    """

    def signed(value):
        return tf.where(value >= 2**31, value - 2**32, value)

    offset, width, height = (
        signed(b.little_endian(10, 4)),
        signed(b.little_endian(18, 4)),
        signed(b.little_endian(22, 4)),
    )
    bits = b.little_endian(28, 2)
    rows = tf.abs(height)
    row_bytes = (bits * width + 31) // 32 * 4
    last_pixel = offset + (rows - 1) * row_bytes + (width - 1) * bits // 8
    intact = (
        (b.length >= 32)
        & tf.reduce_any(tf.equal(bits, [1, 4, 8, 16, 24, 32]))
        & (width > 0)
        & (rows > 0)
        & (offset >= 0)
        & (last_pixel < b.length)
    )
    return intact, width * rows, bits >= 24


def _kind(data) -> tf.Tensor:
    """JPEG, PNG, GIF, BMP, or -1 for anything else (by the file's magic bytes)."""
    kind = tf.constant(-1)
    for value, magic in reversed(
        [(JPEG, b"\xff\xd8\xff"), (PNG, b"\x89PNG\r\n\x1a\n"), (GIF, b"GIF8"), (BMP, b"BM")]
    ):
        kind = tf.where(tf.equal(tf.strings.substr(data, 0, len(magic)), magic), value, kind)
    return kind


def _check(data) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(kind, status from the bytes alone, the bytes to decode) for one encoded image."""
    kind = _kind(data)
    b = _Bytes(data)

    def walked(check):
        def run():
            intact, pixels, *supported = check(b)
            return intact, pixels, supported[0] if supported else tf.constant(True)

        return run

    def refused():
        return tf.constant(False), tf.constant(0, tf.int64), tf.constant(True)

    intact, pixels, supported = tf.switch_case(
        kind + 1, [refused, walked(_jpeg), walked(_png), walked(_gif), walked(_bmp)]
    )
    status = tf.where(
        kind < 0,
        STATUS_NOT_IMAGE,
        tf.where(
            ~intact,
            STATUS_CORRUPT,
            tf.where(
                pixels > MAX_PIXELS, STATUS_TOO_LARGE, tf.where(supported, STATUS_OK, STATUS_UNSUPPORTED)
            ),
        ),
    )
    return kind, status, tf.cond(tf.equal(kind, JPEG), lambda: _without_trailing_ff(data, b), lambda: data)


def _without_trailing_ff(data, b: _Bytes) -> tf.Tensor:
    """A JPEG cut inside a marker (ending in 0xFF, e.g. missing only the last byte of its end marker)
    makes libjpeg fail even when all the image data is there; without those bytes it decodes."""
    positions = b.length - 1 - tf.range(16, dtype=tf.int64)  # the last bytes, last first
    ff = tf.cast(tf.equal(b(positions), 0xFF) & (positions >= 0), tf.int64)
    trailing = tf.reduce_sum(tf.math.cumprod(ff))
    return tf.strings.substr(data, 0, tf.cast(b.length - trailing, tf.int32))


def _decode_rgb(data, kind) -> tf.Tensor:
    """Any supported image → uint8 RGB [h, w, 3]; PNG transparency is composited onto white."""

    def jpeg():
        # Recovers what it can of a truncated JPEG (at least a quarter of its rows).
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
        status: string [batch]: "ok", "not an image", "corrupt" (starts like an image but does not
            decode: truncated before its image data, broken structure, damaged data), "too large"
            (over `MAX_PIXELS`) or "unsupported" (a BMP with a colour palette).

    Example:
    >>> png = tf.io.encode_png(tf.zeros([3, 5, 1], tf.uint8))
    >>> pixels, status = decode_images(tf.stack([png, b"hello", tf.strings.substr(png, 0, 20)]), 8)
    >>> tuple(pixels.shape), status.numpy().tolist()
    ((3, 8, 8, 3), [b'ok', b'not an image', b'corrupt'])
    """
    return _decode_images(tf.convert_to_tensor(images, tf.string), size)


def _plain_options() -> tf.data.Options:
    # A pipeline built on every call: graph rewrites and autotuning would cost more than they save.
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    options.autotune.enabled = False
    return options


_PLAIN = _plain_options()


# Traced once per image size, so an eager call (filtering training images) runs the structure walks
# as graph loops rather than op by op.
@tf.function(reduce_retracing=True, autograph=False)
def _decode_images(images: tf.Tensor, size: int) -> tuple[tf.Tensor, tf.Tensor]:
    batch = tf.shape(images)[0]
    kinds, status, data = tf.map_fn(
        _check,
        images,
        fn_output_signature=(
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.string),
            tf.TensorSpec([], tf.string),
        ),
    )
    # Decoding in tf.data, which can skip the elements whose decoder fails (ignore_errors); the
    # indices of the images that came through say which did.
    wanted = tf.cast(tf.where(tf.equal(status, STATUS_OK))[:, 0], tf.int32)
    decoded = (
        tf.data.Dataset.from_tensor_slices((wanted, tf.gather(data, wanted), tf.gather(kinds, wanted)))
        .map(
            lambda i, d, k: (i, tf.image.resize(_decode_rgb(d, k), [size, size], antialias=True)),
            num_parallel_calls=2,
            deterministic=True,
        )
        .ignore_errors()
        .batch(tf.cast(tf.maximum(batch, 1), tf.int64))
        .with_options(_PLAIN)
    )
    index, pixels = decoded.reduce(
        (tf.zeros([0], tf.int32), tf.zeros([0, size, size, 3])), lambda _, decoded_batch: decoded_batch
    )
    came_through = tf.scatter_nd(index[:, None], tf.ones_like(index, tf.bool), [batch])
    status = tf.where(tf.equal(status, STATUS_OK) & ~came_through, STATUS_CORRUPT, status)
    return tf.scatter_nd(index[:, None], pixels, [batch, size, size, 3]), status
