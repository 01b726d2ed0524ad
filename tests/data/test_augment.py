"""Batched augmentations: shapes, exact content, label bookkeeping, seeds, test time, v2 twins, spec parser."""
import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from cnnlab.data.augment import (
    AUGMENTATION_NAMES,
    ColorJitter,
    CutMix,
    Cutout,
    HorizontalFlip,
    LabelSmoothing,
    Mixup,
    RandomCrop,
    RandomResizedCrop,
    RandomScaleCrop,
    center_crop,
    parse_augment,
    resize_shorter_side,
    smooth_labels,
    v2_transform,
)
from cnnlab.errors import CnnlabError


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def uint8_batch(n=16, c=3, h=32, w=32, low=0, seed=1):
    return torch.randint(low, 256, (n, c, h, w), dtype=torch.uint8, generator=gen(seed))


# Every image augmentation with the shape it should produce from a 16 x 3 x 40 x 48 batch.
IMAGE_AUGMENTATIONS = [
    (HorizontalFlip(), (40, 48)),
    (RandomCrop(pad=4), (40, 48)),
    (RandomCrop(pad=4, mode="reflect"), (40, 48)),
    (RandomCrop(32), (32, 32)),
    (RandomScaleCrop(40, 56, 36), (36, 36)),
    (RandomResizedCrop(24), (24, 24)),
    (ColorJitter(0.4, 0.4, 0.4), (40, 48)),
    (Cutout(16), (40, 48)),
]
IDS = [a.spec() for a, _ in IMAGE_AUGMENTATIONS]


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("aug,size", IMAGE_AUGMENTATIONS, ids=IDS)
def test_shape_and_dtype(aug, size, dtype):
    x = uint8_batch(h=40, w=48)
    x = x if dtype == torch.uint8 else x.float() / 255
    out = aug(x, gen())
    assert out.shape == (16, 3, *size)
    assert out.dtype == dtype
    if dtype == torch.float32:
        assert 0.0 <= out.min() and out.max() <= 1.0


@pytest.mark.parametrize("aug,size", IMAGE_AUGMENTATIONS, ids=IDS)
def test_seeded_determinism(aug, size):
    x = uint8_batch(h=40, w=48)
    assert torch.equal(aug(x, gen(3)), aug(x, gen(3)))
    assert not torch.equal(aug(x, gen(3)), aug(x, gen(4)))


@pytest.mark.parametrize("aug,size", IMAGE_AUGMENTATIONS, ids=IDS)
def test_test_time_behaviour(aug, size):
    x = uint8_batch(h=40, w=48)
    out = aug.eval_transform(x)
    assert out.shape[-2:] == size
    if size == (40, 48):
        assert torch.equal(out, x)  # identity for the size-preserving ones
    assert torch.equal(out, aug.eval_transform(x))  # deterministic


def test_size_changing_eval_is_resize_then_centre_crop():
    x = uint8_batch(h=40, w=48)
    assert torch.equal(RandomCrop(32).eval_transform(x), x[:, :, 4:36, 8:40])
    assert torch.equal(RandomScaleCrop(40, 56, 36).eval_transform(x), center_crop(x, 36))
    rrc = RandomResizedCrop(28)  # 28 / 0.875 = 32
    assert torch.equal(rrc.eval_transform(x), center_crop(resize_shorter_side(x, 32), 28))


def test_flip_mirrors():
    x = uint8_batch()
    assert torch.equal(HorizontalFlip(p=1.0)(x, gen()), x.flip(-1))
    assert torch.equal(HorizontalFlip(p=0.0)(x, gen()), x)
    out = HorizontalFlip()(x, gen())
    flipped = [torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x)]
    kept = [torch.equal(o, xi) for o, xi in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert any(flipped) and any(kept)


def windows_offsets(out, padded):
    """For each output image, the offsets (dy, dx) at which it is a window of the padded image."""
    h, w = out.shape[-2:]
    ph, pw = padded.shape[-2:]
    found = []
    for o, p in zip(out, padded):
        hits = [
            (dy, dx)
            for dy in range(ph - h + 1)
            for dx in range(pw - w + 1)
            if torch.equal(o, p[:, dy : dy + h, dx : dx + w])
        ]
        found.append(hits)
    return found


@pytest.mark.parametrize("mode", ["zero", "reflect"])
def test_pad_crop_is_a_shifted_window_of_the_padded_image(mode):
    x = uint8_batch(n=64, low=1)
    out = RandomCrop(pad=4, mode=mode)(x, gen())
    padded = F.pad(x, (4, 4, 4, 4), mode="constant" if mode == "zero" else "reflect")
    offsets = windows_offsets(out, padded)
    assert all(len(hits) == 1 for hits in offsets)
    dys = {hits[0][0] for hits in offsets}
    assert min(dys) == 0 or max(dys) == 8  # the shifts reach the border of the padding
    assert len(dys) > 4


def test_crop_without_padding_is_a_window():
    x = uint8_batch(h=40, w=48)
    out = RandomCrop(32)(x, gen())
    assert all(len(hits) == 1 for hits in windows_offsets(out, x))


def test_cutout_zeroes_exactly_the_clipped_square():
    size, h, w = 12, 32, 32
    x = uint8_batch(n=200, low=1)  # no zero pixels before cutout
    out = Cutout(size)(x, gen())
    clipped = 0
    for o, xi in zip(out, x):
        zero = (o == 0).all(dim=0)
        assert torch.equal(o[:, ~zero], xi[:, ~zero])
        rows = zero.any(dim=1).nonzero().flatten()
        cols = zero.any(dim=0).nonzero().flatten()
        y1, y2, x1, x2 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        assert zero[y1:y2, x1:x2].all() and zero.sum() == (y2 - y1) * (x2 - x1)  # one full rectangle
        for lo, hi, n in ((y1, y2, h), (x1, x2, w)):
            assert hi - lo == size or ((lo == 0 or hi == n) and hi - lo < size)  # clipped only at a border
        clipped += bool((y2 - y1) * (x2 - x1) < size * size)
    assert clipped > 0  # centres are uniform over the image, so some holes leave it


def test_cutout_probability_and_mean_fill():
    x = uint8_batch(n=64, low=1)
    assert torch.equal(Cutout(8, p=0.0)(x, gen()), x)
    xf = x.float() / 255
    out = Cutout(8, fill="mean")(xf, gen())
    changed = (out != xf).any(dim=1)
    means = xf.mean(dim=(2, 3))
    for o, m, c in zip(out, means, changed):
        assert torch.allclose(o[:, c], m[:, None].expand(-1, int(c.sum())))


def test_jitter_factors_and_formulas():
    x = torch.rand(32, 3, 16, 16, generator=gen()) * 0.5 + 0.25
    out = ColorJitter(brightness=0.3)(x, gen())
    ratio = out / x
    per_image = ratio.flatten(1)
    assert torch.allclose(per_image.min(1).values, per_image.max(1).values, atol=1e-5)  # one factor per image
    assert per_image.min() >= 0.7 - 1e-5 and per_image.max() <= 1.3 + 1e-5
    assert per_image[:, 0].std() > 0.05  # factors differ between images
    grey = x.mean(dim=1, keepdim=True).expand_as(x).contiguous()
    assert torch.allclose(ColorJitter(saturation=0.9)(grey, gen()), grey, atol=1e-4)  # luma sums to 0.9999
    luma = torch.tensor([0.2989, 0.587, 0.114]).view(1, 3, 1, 1)
    small = ColorJitter(contrast=0.2)(x, gen())
    mean_grey = lambda t: (t * luma).sum(1).mean(dim=(1, 2))  # noqa: E731
    assert torch.allclose(mean_grey(small), mean_grey(x), atol=1e-5)  # contrast keeps the mean grey level


@pytest.mark.parametrize(
    "prop,factor,adjust",
    [("brightness", 1.3, TF.adjust_brightness), ("contrast", 0.6, TF.adjust_contrast),
     ("saturation", 1.4, TF.adjust_saturation)],
)
def test_jitter_matches_torchvision_formulas_for_a_fixed_factor(prop, factor, adjust):
    jitter = ColorJitter(**{prop: 0.5})
    jitter._factors = lambda n, amount, g, d: torch.full((n, 1, 1, 1), factor)  # pin the random factor
    xf = torch.rand(4, 3, 16, 16, generator=gen())
    assert torch.allclose(jitter(xf, gen()), adjust(xf, factor), atol=1e-5)
    x = uint8_batch(n=4)
    assert (jitter(x, gen()).int() - adjust(x, factor).int()).abs().max() <= 1  # we round, torchvision truncates


def one_hot_distinct(n):
    """n images and labels 0..n-1, so a soft target says exactly which images were mixed."""
    return torch.rand(n, 3, 32, 32, generator=gen(5)), torch.arange(n)


def test_mixup_soft_targets_match_the_image_mix():
    x, y = one_hot_distinct(32)
    out, t = Mixup(0.4)(x, y, gen(), num_classes=32)
    assert t.shape == (32, 32) and torch.allclose(t.sum(1), torch.ones(32))
    for i in range(32):
        lam = t[i, i]
        partner = [j for j in range(32) if j != i and t[i, j] > 0]
        expected = x[i] if not partner else lam * x[i] + t[i, partner[0]] * x[partner[0]]
        assert len(partner) <= 1
        assert torch.allclose(out[i], expected, atol=1e-5)
    assert (t.diagonal() < 0.999).any()


def test_cutmix_weight_is_the_pasted_area_exactly():
    x, y = one_hot_distinct(64)
    out, t = CutMix(1.0)(x, y, gen(), num_classes=64)
    assert torch.allclose(t.sum(1), torch.ones(64, dtype=t.dtype))
    pasted_any = False
    for i in range(64):
        from_self = (out[i] == x[i]).all(dim=0)
        fraction_pasted = 1.0 - from_self.float().mean()
        assert t[i, i] == pytest.approx(1.0 - fraction_pasted.item(), abs=1e-6)
        partner = [j for j in range(64) if j != i and t[i, j] > 0]
        if partner:
            pasted_any = True
            j = partner[0]
            assert torch.equal(out[i][:, ~from_self], x[j][:, ~from_self])
            rows = (~from_self).any(1).nonzero().flatten()
            cols = (~from_self).any(0).nonzero().flatten()
            box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
            assert box == (~from_self).sum()  # the pasted region is one box
    assert pasted_any


def test_label_smoothing_targets_give_the_built_in_smoothed_loss():
    y = torch.tensor([0, 3, 9])
    t = smooth_labels(y, 10, 0.1)
    assert torch.allclose(t.sum(1), torch.ones(3))
    assert t[1, 3] == pytest.approx(0.9 + 0.01) and t[1, 0] == pytest.approx(0.01)
    images, t2 = LabelSmoothing(0.1)(torch.zeros(3, 3, 4, 4), y, num_classes=10)
    assert torch.equal(t, t2)
    logits = torch.randn(3, 10, generator=gen())
    expected = F.cross_entropy(logits, y, label_smoothing=0.1)
    assert torch.allclose(F.cross_entropy(logits, t), expected, atol=1e-6)  # the trainer's loss of soft targets
    with pytest.raises(CnnlabError, match="num_classes"):
        Mixup()(torch.zeros(3, 3, 4, 4), y)


def test_label_augmentations_are_seeded():
    x, y = one_hot_distinct(16)
    for aug in (Mixup(1.0), CutMix(1.0)):
        a = aug(x, y, gen(1), 16)
        b = aug(x, y, gen(1), 16)
        c = aug(x, y, gen(2), 16)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        assert not torch.equal(a[1], c[1])


# --------------------------------------------------------------------------- pipeline and parser


def test_parse_lecture_recipes():
    cifar = parse_augment("flip, crop(pad=4), cutout(16)")
    assert [type(a) for a in cifar] == [HorizontalFlip, RandomCrop, Cutout]
    assert cifar.augmentations[1].pad == 4 and cifar.augmentations[2].size == 16
    resnet = parse_augment("scale(256,480), crop(224), flip, jitter(0.4,0.4,0.4)")
    scale, flip, jitter = resnet.augmentations
    assert isinstance(scale, RandomScaleCrop) and (scale.min_size, scale.max_size, scale.size) == (256, 480, (224, 224))
    assert (jitter.brightness, jitter.contrast, jitter.saturation) == (0.4, 0.4, 0.4)
    assert isinstance(parse_augment("mixup(0.2)").augmentations[0], Mixup)
    assert parse_augment("cutmix(1.0)").augmentations[0].alpha == 1.0
    assert parse_augment("label_smoothing(0.1)").augmentations[0].eps == 0.1
    rrc = parse_augment("rrc(224, min_scale=0.35)").augmentations[0]
    assert rrc.size == (224, 224) and rrc.scale == (0.35, 1.0)
    reflect = parse_augment("crop(32, 4, mode=reflect)").augmentations[0]
    assert (reflect.size, reflect.pad, reflect.mode) == ((32, 32), 4, "reflect")
    assert len(parse_augment("")) == 0 and len(parse_augment("none")) == 0


@pytest.mark.parametrize(
    "spec",
    [
        "flip, crop(pad=4), cutout(16)",
        "scale(256, 480), crop(224), flip, jitter(0.4, 0.4, 0.4)",
        "random_resized_crop(224, min_scale=0.35, max_scale=1), flip(p=0.3), cutout(8, p=0.5, fill=mean)",
        "crop(32, pad=4, mode=reflect), mixup(0.2), label_smoothing(0.1)",
        "cutmix(1)",
        "flip(mode=alternate), crop(pad=2, mode=reflect)",
    ],
)
def test_spec_round_trip(spec):
    pipeline = parse_augment(spec)
    assert parse_augment(pipeline.spec).spec == pipeline.spec


@pytest.mark.parametrize(
    "spec,fragment",
    [
        ("flip, rotate(10)", "rotate"),
        ("flip, crop(pad=4), cutout(-3)", "cutout(-3)"),
        ("crop(pad=x)", "crop(pad=x)"),
        ("flip(p=2)", "flip(p=2)"),
        ("cutout", "cutout"),
        ("cutout(8, color=1)", "color"),
        ("mixup(0.2, 1, 3)", "mixup(0.2, 1, 3)"),
        ("mixup(0)", "mixup(0)"),
        ("crop(pad=4, mode=wrap)", "wrap"),
        ("scale(256, 480), flip", "scale(256, 480)"),
        ("scale(480, 256), crop(224)", "scale(480, 256)"),
        ("flip, crop(pad=4", "("),
        ("flip,, cutout(8)", "empty"),
        ("label_smoothing(1.5)", "label_smoothing(1.5)"),
        ("flip(mode=sometimes)", "sometimes"),
        ("flip(p=0.3, mode=alternate)", "p is 0.5"),
    ],
)
def test_bad_specs_name_the_token(spec, fragment):
    with pytest.raises(CnnlabError) as info:
        parse_augment(spec)
    assert fragment in str(info.value)


def test_unknown_name_lists_the_valid_names():
    with pytest.raises(CnnlabError) as info:
        parse_augment("flip, rotate(10)")
    for name in AUGMENTATION_NAMES:
        assert name in str(info.value)


def test_pipeline_targets_and_test_time():
    x = uint8_batch(n=8)
    y = torch.arange(8)
    plain = parse_augment("flip, crop(pad=4)")
    images, targets = plain(x, y, generator=gen())
    assert images.dtype == torch.uint8 and torch.equal(targets, y)  # labels untouched
    assert torch.equal(plain(x, generator=gen(2)), plain(x, generator=gen(2)))
    mixing = parse_augment("flip, mixup(0.2), label_smoothing(0.1)", num_classes=10)
    images, targets = mixing(x.float() / 255, y, generator=gen())
    assert targets.shape == (8, 10) and torch.allclose(targets.sum(1), torch.ones(8))
    assert targets.min() > 0  # smoothed
    with pytest.raises(CnnlabError, match="labels"):
        mixing(x.float(), generator=gen())
    resnet = parse_augment("scale(40, 56), crop(36), flip, jitter(0.4, 0.4, 0.4)")
    x48 = uint8_batch(n=4, h=40, w=48)
    assert torch.equal(resnet(x48, y[:4], train=False)[0], resnet.eval_transform(x48))
    assert resnet.eval_transform(x48).shape[-2:] == (36, 36)


def test_scale_crop_at_native_scale_is_a_plain_crop():
    # L = the shorter side: no resizing, so every output is an exact window (roi_align
    # samples pixel centres).
    x = torch.rand(16, 3, 40, 48, generator=gen())
    out = RandomScaleCrop(40, 40, 32)(x, gen())
    for o, xi in zip(out, x):
        errors = [
            (o - xi[:, dy : dy + 32, dx : dx + 32]).abs().max().item() for dy in range(9) for dx in range(17)
        ]
        assert min(errors) < 1e-5


def test_random_resized_crop_of_the_whole_image_is_identity():
    x = torch.rand(4, 3, 32, 32, generator=gen())
    out = RandomResizedCrop(32, scale=(1.0, 1.0), ratio=(1.0, 1.0))(x, gen())
    assert torch.allclose(out, x, atol=1e-5)
    half = RandomResizedCrop(16, scale=(1.0, 1.0), ratio=(1.0, 1.0))(x, gen())
    assert torch.allclose(half, F.avg_pool2d(x, 2), atol=1e-5)  # the adaptive sampling averages


# --------------------------------------------------------------------------- per-sample v2 twins


def test_v2_flip_with_p1_mirrors_like_the_batched_one():
    x = uint8_batch(n=4)
    twin = v2_transform("flip(p=1)")
    batched = parse_augment("flip(p=1)")(x, generator=gen())
    for xi, bi in zip(x, batched):
        assert torch.equal(twin(xi), bi)


@pytest.mark.parametrize("spec", ["crop(pad=4)", "crop(32, pad=4)", "crop(pad=4, mode=reflect)"])
def test_v2_pad_crop_is_a_window_and_covers_the_same_shifts(spec):
    torch.manual_seed(0)
    x = uint8_batch(n=200, low=1)
    twin = v2_transform(spec)
    mode = "reflect" if "reflect" in spec else "constant"
    padded = F.pad(x, (4, 4, 4, 4), mode=mode)
    per_sample = torch.stack([twin(xi) for xi in x])
    batched = parse_augment(spec)(x, generator=gen())
    for out in (per_sample, batched):
        offsets = windows_offsets(out, padded)
        assert all(len(h) == 1 for h in offsets)
        dy = torch.tensor([h[0][0] for h in offsets], dtype=torch.float)
        assert abs(dy.mean().item() - 4.0) < 0.6 and dy.min() == 0 and dy.max() == 8  # U{0..8}


def test_v2_cutout_zeroes_a_clipped_square():
    torch.manual_seed(0)
    twin = v2_transform("cutout(12)")
    x = uint8_batch(n=50, low=1)
    sides = []
    for xi in x:
        out = twin(xi)
        zero = (out == 0).all(dim=0)
        assert torch.equal(out[:, ~zero], xi[:, ~zero])
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert zero.sum() == len(rows) * len(cols) and len(rows) <= 12 and len(cols) <= 12
        sides.append(len(rows))
    assert 12 in sides and min(sides) < 12


def test_v2_size_changing_steps_give_the_same_sizes():
    torch.manual_seed(0)
    image = uint8_batch(n=1, h=300, w=400)[0]
    for spec, train_size, eval_size in [
        ("scale(256, 480), crop(224), flip, jitter(0.4, 0.4, 0.4)", (224, 224), (224, 224)),
        ("random_resized_crop(96)", (96, 96), (96, 96)),
        ("crop(200)", (200, 200), (200, 200)),
    ]:
        assert v2_transform(spec)(image).shape[-2:] == train_size
        assert v2_transform(spec, train=False)(image).shape[-2:] == eval_size
        batched_eval = parse_augment(spec).eval_transform(image[None])[0]
        per_sample_eval = v2_transform(spec, train=False)(image)
        assert (batched_eval.int() - per_sample_eval.int()).abs().max() <= 1  # same resize and crop


def test_v2_normalises_and_accepts_pil():
    from PIL import Image

    image = Image.fromarray(uint8_batch(n=1)[0].permute(1, 2, 0).numpy())
    twin = v2_transform("flip, crop(pad=4), cutout(8)", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    out = twin(image)
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    assert out.min() >= -2.0 - 1e-6 and out.max() <= 2.0 + 1e-6
    assert isinstance(twin, v2.Compose)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_same_generator_same_augmentation_on_gpu():
    x = uint8_batch(n=32)
    pipeline = parse_augment("flip, crop(pad=4), cutout(8), jitter(0.2, 0.2, 0.2)")
    cpu = pipeline(x, generator=gen(7))
    gpu = pipeline(x.cuda(), generator=gen(7))
    assert gpu.device.type == "cuda"
    assert (cpu.int() - gpu.cpu().int()).abs().max() <= 1


@pytest.mark.parametrize("width", [32, 30, 7])
def test_flip_of_any_width_and_offset(width):
    storage = torch.randint(0, 256, (1 + 16 * 3 * 5 * width,), dtype=torch.uint8, generator=gen())
    x = storage[1:].view(16, 3, 5, width)  # odd byte offset: no word view possible
    out = HorizontalFlip()(x, gen())
    assert all(torch.equal(o, xi) or torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x))
    assert not torch.equal(out, x)
