"""What the study's CNN will cost, computed from its settings before anything is built.

params.py refuses at load what cannot work: a kernel larger than the feature map it meets,
more pooling than the image has pixels, and a model or batch too large to train (these would
otherwise end in an out-of-memory traceback from the backend, minutes into a run). Pure
arithmetic, no Keras: the numbers match models.build_cnn (tested against count_params).
"""

from __future__ import annotations

INPUT_SIDE = 28
NUM_CLASSES = 10
# Limits, documented in the README ("Parameters and experiments"). The default baseline has
# 241,546 parameters and needs about 0.1 GB to train; filters_wide 0.2 GB.
MAX_PARAMETERS = 100_000_000       # 4x ResNet50; 400 MB of float32 weights, 1.6 GB with Adam's state
MAX_TRAINING_BYTES = 8 * 2**30     # estimated memory for one training step (weights + activations)
MAX_INPUT_SIZE = 224               # compare.input_size: keras.applications' native side
MAX_REPEATS = 1000                 # outliers.repeats
FLOAT_BYTES = 4


class SizeError(ValueError):
    """A size that cannot work; `field` is the key of `train` to blame."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def feature_map_sides(blocks: int) -> list[int]:
    """The side of the map each conv block meets (2x2 pooling halves it after each block)."""
    sides, side = [], INPUT_SIDE
    for _ in range(blocks):
        sides.append(side)
        side //= 2
    return sides + [side]


def check_feature_maps(filters: tuple[int, ...], kernel_size: int) -> None:
    sides = feature_map_sides(len(filters))
    for block, side in enumerate(sides[:-1], start=1):
        if side < 1:
            raise SizeError("filters", f"{len(filters)} conv blocks with 2x2 pooling shrink a {INPUT_SIDE}-pixel "
                                       f"image to nothing before block {block}; use at most {block - 1}")
        if kernel_size > side:
            raise SizeError("kernel_size", f"a {kernel_size}x{kernel_size} kernel is larger than the "
                                           f"{side}x{side} feature map that conv block {block} meets")
    if sides[-1] < 1:
        raise SizeError("filters", f"{len(filters)} conv blocks with 2x2 pooling leave no pixel of a "
                                   f"{INPUT_SIDE}-pixel image; use fewer entries")


def parameter_counts(filters: tuple[int, ...], kernel_size: int, dense: tuple[int, ...],
                     batch_norm: bool) -> tuple[int, int]:
    """(convolutional part, dense part) parameter counts, as Keras' count_params() reports them."""
    conv, channels = 0, 1
    for f in filters:
        conv += kernel_size * kernel_size * channels * f + f + (4 * f if batch_norm else 0)
        channels = f
    flat = feature_map_sides(len(filters))[-1] ** 2 * channels
    dense_part, width = 0, flat
    for units in (*dense, NUM_CLASSES):
        dense_part += width * units + units
        width = units
    return conv, dense_part


def training_bytes(filters: tuple[int, ...], kernel_size: int, dense: tuple[int, ...], batch_size: int,
                   batch_norm: bool) -> int:
    """A lower estimate of one training step's memory: weights with gradients and two optimizer
    slots (4 copies), and each image's activations kept for the backward pass (conv, BN, ReLU
    outputs and the pooled map per block; the dense layers), twice for their gradients."""
    weights = sum(parameter_counts(filters, kernel_size, dense, batch_norm))
    sides = feature_map_sides(len(filters))
    per_image = INPUT_SIDE ** 2
    for f, side, pooled in zip(filters, sides, sides[1:]):
        per_image += side * side * f * (3 if batch_norm else 2) + pooled * pooled * f
    per_image += 2 * sum(dense) + NUM_CLASSES
    return FLOAT_BYTES * (4 * weights + 2 * batch_size * per_image)


def check_model_size(filters: tuple[int, ...], kernel_size: int, dense: tuple[int, ...], batch_size: int,
                     batch_norm: bool) -> None:
    conv, dense_part = parameter_counts(filters, kernel_size, dense, batch_norm)
    if conv + dense_part > MAX_PARAMETERS:
        # The first dense layer's weights grow with both its width and the last block's filters.
        field = "dense" if dense_part > conv and max(dense) >= filters[-1] else "filters"
        raise SizeError(field, f"the model would have {conv + dense_part:,} parameters; the limit is "
                               f"{MAX_PARAMETERS:,} (sizes.MAX_PARAMETERS)")
    need = training_bytes(filters, kernel_size, dense, batch_size, batch_norm)
    if need > MAX_TRAINING_BYTES:
        raise SizeError("batch_size", f"training batches of {batch_size:,} images would need about "
                                      f"{need / 2**30:,.1f} GiB; the limit is {MAX_TRAINING_BYTES / 2**30:g} GiB "
                                      "(sizes.MAX_TRAINING_BYTES): use a smaller batch_size")


def train_images(prepare) -> int | None:
    """Images in the train split, when params alone tell (prepare.per_class is a number;
    every registered dataset has ten classes). None for per_class: all."""
    if prepare.per_class is None:
        return None
    split = prepare.split
    share = split.train if prepare.pool else split.train / (split.train + split.val)
    return max(1, round(prepare.per_class * share)) * NUM_CLASSES


def check_batch(batch_size: int, images: int) -> None:
    # Refused rather than clamped: a batch larger than the split silently becomes one
    # full-batch step per epoch, a different experiment from the one the file asks for.
    if batch_size > images:
        raise SizeError("batch_size", f"{batch_size:,} is larger than the train split ({images:,} images "
                                      f"from prepare.per_class and prepare.split): use at most {images:,}")
