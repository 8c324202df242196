"""The registry of data sets the fetch stage knows: files, checksums, mirrors.

Each file lists the SHA-256 of its gzip bytes, of its decompressed IDX bytes, or
both. A mirror that re-compresses the same data (Debian does) passes on the raw
checksum; any other bytes fail both.
"""

from __future__ import annotations

from dataclasses import dataclass


# The four files of MNIST's layout, by role. Every data set uses these names.
ROLES = ("train_images", "train_labels", "test_images", "test_labels")
FILENAMES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

# The cap for a file whose size the registry does not give (only test data sets).
UNKNOWN_SIZE_CAP = 256 << 20

DIGITS = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class FileSpec:
    role: str
    filename: str
    sha256_gz: str | None = None   # of the .gz bytes as published
    sha256_raw: str | None = None  # of the decompressed IDX bytes
    size_gz: int | None = None     # bytes of the .gz as published (with sha256_gz)
    size_raw: int | None = None    # bytes of the decompressed IDX file

    @property
    def max_download_bytes(self) -> int:
        """The most bytes a mirror may send for this file before the download is stopped.

        The published .gz size when only its checksum is known; with a raw checksum a
        mirror may re-compress, so the bound is the largest gzip of size_raw bytes
        (stored blocks: 5 bytes per 64 KiB, plus a header that may carry a file name).
        """
        if self.size_raw is not None and self.sha256_raw:
            return max(self.size_gz or 0, self.size_raw + 5 * (self.size_raw // 16383 + 1) + 4096)
        if self.size_gz is not None:
            return self.size_gz
        return UNKNOWN_SIZE_CAP


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    files: tuple[FileSpec, ...]
    mirrors: tuple[str, ...]
    class_names: tuple[str, ...]
    items: str = "digits"   # what its images are, in words the reports use ("test digits")

    def file(self, role: str) -> FileSpec:
        return next(f for f in self.files if f.role == role)


def idx_size(role: str, count: int) -> int:
    """Bytes of an IDX file of `count` 28x28 uint8 images (header 16) or labels (header 8)."""
    return 16 + count * 28 * 28 if role.endswith("images") else 8 + count


def _files(counts: dict[str, int], gz: dict[str, str] | None = None, raw: dict[str, str] | None = None,
           gz_sizes: dict[str, int] | None = None) -> tuple[FileSpec, ...]:
    gz, raw, gz_sizes = gz or {}, raw or {}, gz_sizes or {}
    return tuple(FileSpec(role, FILENAMES[role], gz.get(role), raw.get(role), gz_sizes.get(role),
                          idx_size(role, counts[role])) for role in ROLES)


MNIST_COUNTS = {"train_images": 60000, "train_labels": 60000, "test_images": 10000, "test_labels": 10000}


DATASETS: dict[str, Dataset] = {
    "mnist-sample": Dataset(
        name="mnist-sample",
        description="10,000 real MNIST digits bundled in the repo (8,337 train + 1,663 t10k)",
        files=_files(
            {"train_images": 8337, "train_labels": 8337, "test_images": 1663, "test_labels": 1663},
            gz_sizes={"train_images": 1344221, "train_labels": 4246, "test_images": 269211, "test_labels": 855},
            gz={
                "train_images": "edfdde5ccc619e3d52bb88870e15c6f3bd5d7b99d8f7b84843f94ca14195c9d4",
                "train_labels": "7332e28aa0774a6e09bff10cdb0b0ecd8955b519c44df796df5321b01d728965",
                "test_images": "84e3256246b1fcc3afc5d738b283ebe348161d92ba5e23c55e031d87c08b0f7b",
                "test_labels": "8d89c16eae332f989735dce407e72496a9b15b2595d3eb5bf65eea02383fb23d",
            },
            raw={
                "train_images": "d43c5fad0f1a487a2fe526129aca1bfac7fb381d8e42a9c0570af940a27255d9",
                "train_labels": "2770d403ab8d7a903c6d5b5671fa2eb0b056427e681d6f2f08508ee534ad5406",
                "test_images": "99fa322b1dee3718b73226ba9924bb322316068183763cba3acaa4d72e274e3e",
                "test_labels": "7c51ef0939e12078d43efc272cd60ed35a2da302838edab7330f33700f5472d3",
            },
        ),
        mirrors=("data/bundled/mnist-sample",),  # relative to the repo copy the stage runs in
        class_names=DIGITS,
    ),
    "mnist": Dataset(
        name="mnist",
        description="MNIST, 60,000 train + 10,000 t10k handwritten digits",
        files=_files(MNIST_COUNTS, gz_sizes={
            "train_images": 9912422, "train_labels": 28881, "test_images": 1648877, "test_labels": 4542,
        }, gz={
            "train_images": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train_labels": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "test_images": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "test_labels": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        }),
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        class_names=DIGITS,
    ),
    "fashion-mnist": Dataset(
        name="fashion-mnist",
        description="Fashion-MNIST (Zalando), 60,000 train + 10,000 t10k clothing images",
        files=_files(MNIST_COUNTS, raw={
            "train_images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train_labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "test_images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "test_labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        }),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        items="clothing images",
    ),
}


def items_of(dataset: str) -> str:
    """What a dataset's images are, in words ("digits"); "images" for a name the registry lacks."""
    known = DATASETS.get(dataset)
    return known.items if known else "images"
