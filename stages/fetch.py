"""Stage fetch: copy or download the data set named by fetch.dataset into data/raw/."""

from pathlib import Path

from cnnstudy.fetch import fetch_dataset, resolve_dataset
from cnnstudy.params import load_params
from cnnstudy.stage import run

OUT_DIR = Path("data/raw")  # relative: DVC runs every stage in the root of its own copy of the repo


def main() -> None:
    params = load_params()
    dataset = resolve_dataset(params.fetch.dataset)
    manifest = fetch_dataset(dataset, OUT_DIR, params.fetch.mirrors)
    for name, entry in manifest["files"].items():
        size = (OUT_DIR / name).stat().st_size
        print(f"{name:28} {size:>12,} bytes  sha256 {entry['sha256_gz'][:12]}  from {entry['source']}")


if __name__ == "__main__":
    run(main)
