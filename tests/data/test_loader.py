"""In-memory loader: coverage per epoch, seeded resume, normalisation, augmentation wiring."""
import pytest
import torch

from cnnlab.data.loader import InMemoryLoader
from cnnlab.errors import CnnlabError


def dataset(n=100, h=8, w=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, h, w), dtype=torch.uint8, generator=g)
    return images, torch.arange(n) % 10


def collect(loader):
    batches = list(loader)
    return torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches]), batches


@pytest.mark.parametrize("shuffle", [True, False])
def test_every_sample_exactly_once_per_epoch(shuffle):
    images, _ = dataset(103)
    labels = torch.arange(103)  # the label names the sample
    loader = InMemoryLoader(images, labels, 16, shuffle=shuffle, seed=3)
    assert len(loader) == 7
    for _ in range(2):
        seen_images, seen, batches = collect(loader)
        assert [b[0].shape[0] for b in batches] == [16] * 6 + [7]
        assert torch.equal(seen.sort().values, labels)
        assert torch.allclose(seen_images, images[seen].float() / 255)  # each image with its own label
        if not shuffle:
            assert torch.equal(seen, labels)


def test_drop_last():
    images, labels = dataset(103)
    loader = InMemoryLoader(images, labels, 16, drop_last=True)
    assert len(loader) == 6
    _, seen, batches = collect(loader)
    assert len(batches) == 6 and all(b[0].shape[0] == 16 for b in batches)
    assert seen.shape[0] == 96


def test_epochs_differ_and_set_epoch_replays_an_epoch():
    images, labels = dataset()
    spec = "flip, crop(pad=2), cutout(4)"
    first = InMemoryLoader(images, labels, 32, augment=spec, seed=7)
    runs = [collect(first) for _ in range(3)]  # epochs 0, 1, 2
    assert not torch.equal(runs[0][1], runs[1][1])  # new order each epoch
    resumed = InMemoryLoader(images, labels, 32, augment=spec, seed=7)
    resumed.set_epoch(2)  # without running epochs 0 and 1
    images2, labels2, _ = collect(resumed)
    assert torch.equal(images2, runs[2][0]) and torch.equal(labels2, runs[2][1])
    other_seed = InMemoryLoader(images, labels, 32, augment=spec, seed=8)
    assert not torch.equal(collect(other_seed)[1], runs[0][1])
    assert resumed.epoch == 3


def test_normalisation():
    images, labels = dataset(20)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    loader = InMemoryLoader(images, labels, 8, shuffle=False, mean=mean, std=std)
    out, _, _ = collect(loader)
    expected = (images.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(out, expected, atol=1e-5)
    unit = InMemoryLoader(images, labels, 8, shuffle=False)
    assert torch.allclose(collect(unit)[0], images.float() / 255)
    floats = InMemoryLoader(images.float() / 255, labels, 8, shuffle=False, mean=mean, std=std)
    assert torch.allclose(collect(floats)[0], expected, atol=1e-5)


def test_augmentation_runs_on_the_batches():
    images, labels = dataset(64, h=16, w=16)
    plain = InMemoryLoader(images, labels, 16, seed=1)
    augmented = InMemoryLoader(images, labels, 16, augment="flip(p=1)", seed=1)
    for (a, ya), (b, yb) in zip(plain, augmented):
        assert torch.equal(ya, yb) and torch.equal(b, a.flip(-1))


def test_mixing_gives_soft_targets():
    images, labels = dataset(64)
    loader = InMemoryLoader(images, labels, 16, augment="cutmix(1.0), label_smoothing(0.1)")
    assert loader.num_classes == 10  # inferred from the labels
    for x, t in loader:
        assert x.dtype == torch.float32 and t.shape == (16, 10)
        assert torch.allclose(t.sum(1), torch.ones(16))


def test_dtype_and_channels_last():
    images, labels = dataset(32)
    loader = InMemoryLoader(images, labels, 8, dtype=torch.bfloat16, channels_last=True, augment="crop(pad=2)")
    x, y = next(iter(loader))
    assert x.dtype == torch.bfloat16 and y.dtype == torch.long
    assert x.is_contiguous(memory_format=torch.channels_last)


def test_bad_arguments():
    images, labels = dataset(10)
    with pytest.raises(CnnlabError):
        InMemoryLoader(images[0], labels, 4)
    with pytest.raises(CnnlabError):
        InMemoryLoader(images, labels[:5], 4)
    with pytest.raises(CnnlabError):
        InMemoryLoader(images, labels, 0)
    with pytest.raises(CnnlabError):
        InMemoryLoader(images, labels, 4, mean=(0.5, 0.5))
    with pytest.raises(CnnlabError, match="rotate"):
        InMemoryLoader(images, labels, 4, augment="rotate(10)")


def test_from_dataset_takes_images_labels_and_classes():
    images, labels = dataset(20)

    class InMemory:
        pass

    data = InMemory()
    data.images, data.labels, data.classes = images, labels, [str(i) for i in range(12)]
    loader = InMemoryLoader.from_dataset(data, 8, augment="mixup(0.2)")
    assert loader.num_classes == 12
    assert next(iter(loader))[1].shape == (8, 12)
    with pytest.raises(CnnlabError, match="v2_transform"):
        InMemoryLoader.from_dataset(object(), 8)


def test_alternating_flip_mirrors_each_image_once_in_every_two_epochs():
    """airbench's derandomised flip: an image's flip in epoch e+1 is the opposite of its flip
    in epoch e, its epoch-0 flip is a fair coin of (index, seed), whatever the batch order."""
    images, _ = dataset(200, h=4, w=6)
    labels = torch.arange(200)  # the label names the sample
    flipped = {}
    for seed in (0, 1):
        loader = InMemoryLoader(images, labels, 32, augment="flip(mode=alternate)", seed=seed)
        for epoch in range(3):
            seen_images, seen, _ = collect(loader)
            original = images[seen].float() / 255
            mirrored = torch.isclose(seen_images, original.flip(-1)).flatten(1).all(1)
            assert (mirrored | torch.isclose(seen_images, original).flatten(1).all(1)).all()
            flipped[seed, epoch] = torch.zeros(200, dtype=torch.bool).index_put_((seen,), mirrored)
        assert torch.equal(flipped[seed, 1], ~flipped[seed, 0]) and torch.equal(flipped[seed, 2], flipped[seed, 0])
        assert 70 < int(flipped[seed, 0].sum()) < 130  # about half, as a fair coin
    assert not torch.equal(flipped[0, 0], flipped[1, 0])  # the coins follow the run's seed


def test_alternating_flip_has_no_per_sample_twin():
    from cnnlab.data.augment import parse_augment

    with pytest.raises(CnnlabError, match="in-memory loader"):
        parse_augment("flip(mode=alternate)").to_v2(train=True)
    parse_augment("flip(mode=alternate)").to_v2(train=False)  # test time: no flip, nothing to refuse
