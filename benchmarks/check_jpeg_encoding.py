"""How the JPEG files of an image tree (.tar.gz) were encoded, split by split.

    python benchmarks/check_jpeg_encoding.py [--archive ../shared/data/cifar10-jpg.tar.gz] [--sample 600]

Counts a random sample of the ``.jpg`` members by (split, chroma subsampling, quantisation
tables): if the training and test images had been encoded differently (another quality,
another subsampling), the test set would be a shifted distribution, one possible cause of
accuracies below the papers'. Subsampling as PIL reports it: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import io
import random
import tarfile
from pathlib import Path

from PIL import Image, JpegImagePlugin

DEFAULT_ARCHIVE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-jpg.tar.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", default=str(DEFAULT_ARCHIVE))
    parser.add_argument("--sample", type=int, default=600, help="files to read (random, seed 0)")
    args = parser.parse_args()

    with tarfile.open(args.archive) as archive:
        members = [m for m in archive.getmembers() if m.isfile() and m.name.lower().endswith((".jpg", ".jpeg"))]
        chosen = random.Random(0).sample(members, min(args.sample, len(members)))
        counts: collections.Counter = collections.Counter()
        for member in chosen:
            split = Path(member.name).parts[0]
            image = Image.open(io.BytesIO(archive.extractfile(member).read()))
            tables = b"".join(bytes(table) for _, table in sorted(image.quantization.items()))
            key = (split, JpegImagePlugin.get_sampling(image), hashlib.sha256(tables).hexdigest()[:12])
            counts[key] += 1
    print(f"{len(chosen)} of {len(members)} JPEG files in {Path(args.archive).name}")
    print("split     subsampling  quantisation tables  files")
    for (split, sampling, tables), count in sorted(counts.items()):
        print(f"{split:9s} {sampling:>11}  {tables:>19}  {count:5d}")


if __name__ == "__main__":
    main()
