"""ImageNet CNNs from `keras.applications` as region encoders for the captioner."""

from __future__ import annotations

import keras

# name → (constructor, its preprocess_input, constructor keyword arguments)
BACKBONES = {
    "mobilenet_v2": (keras.applications.MobileNetV2, keras.applications.mobilenet_v2.preprocess_input, {}),
    "mobilenet_0.75": (
        keras.applications.MobileNet,
        keras.applications.mobilenet.preprocess_input,
        {"alpha": 0.75},
    ),
    "efficientnet_b0": (
        keras.applications.EfficientNetB0,
        keras.applications.efficientnet.preprocess_input,
        {},
    ),
    "resnet50": (keras.applications.ResNet50, keras.applications.resnet50.preprocess_input, {}),
}


# Not a CNN: the mean colour of each cell of an 8 × 8 grid, with no weights at all. Tests and the
# synthetic-shapes demo use it where no pretrained weights can be downloaded (an untrained CNN's
# features carry too little of the image for a decoder to learn from in a short run).
GRID = "grid"


def make_backbone(
    name: str, weights: str | None, image_size: int = 224, trainable: bool = False
) -> keras.Model:
    """A model from RGB pixels (float, 0–255) [batch, size, size, 3] to regions [batch, h × w, channels].

    Each spatial cell of the CNN's last feature map is one region the decoder can attend to
    (MobileNetV2 at 224 px: 7 × 7 = 49 regions of 1,280 channels).

    Args:
        name: one of `BACKBONES`.
        weights: a local `.h5` weights file (no top), "imagenet" (downloads), or None (random).
        image_size: input height and width.
        trainable: False freezes the CNN (the default: its features can then be cached).

    Example:
    >>> make_backbone("mobilenet_v2", None, 96).output_shape
    (None, 9, 1280)
    """
    if name == GRID:
        return _colour_grid(image_size)
    if name not in BACKBONES:
        raise ValueError(f"Unknown backbone {name!r}; choose one of {sorted(BACKBONES) + [GRID]}.")
    constructor, preprocess, extra = BACKBONES[name]
    cnn = constructor(include_top=False, weights=weights, input_shape=(image_size, image_size, 3), **extra)
    cnn.trainable = trainable
    pixels = keras.Input((image_size, image_size, 3), name="pixels")
    features = cnn(keras.layers.Lambda(preprocess, name="preprocess")(pixels))
    regions = keras.layers.Reshape((-1, features.shape[-1]), name="regions")(features)
    return keras.Model(pixels, regions, name=f"{name.replace('.', '_')}_regions")


def _colour_grid(image_size: int) -> keras.Model:
    if image_size % 8:
        raise ValueError(f"the {GRID} backbone needs an image size divisible by 8, got {image_size}")
    pixels = keras.Input((image_size, image_size, 3), name="pixels")
    cells = keras.layers.AveragePooling2D(image_size // 8, name="cells")(
        keras.layers.Rescaling(1 / 255)(pixels)
    )
    regions = keras.layers.Reshape((64, 3), name="regions")(cells)
    return keras.Model(pixels, regions, name="grid_regions")
