"""ResNet-18 (torchvision's layout, written here) and the CIFAR-10 augmentation of BiostatisV6's
benchmark."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from otgap.models.resnet import resnet18
from otgap.train.cifar import augment

from .conftest import REPO, job_counts, snakemake


def test_resnet18_parameter_count_and_keys():
    model = resnet18(10)
    assert sum(p.numel() for p in model.parameters()) == 11_181_642
    keys = list(model.state_dict())
    # torchvision's resnet18 state dict: 20 convolutions, 20 batch norms (5 entries each), fc
    assert len(keys) == 122
    for key in ("conv1.weight", "layer2.0.downsample.0.weight", "layer4.1.bn2.running_var"):
        assert key in keys
    assert tuple(model.state_dict()["fc.weight"].shape) == (10, 512)
    assert tuple(model.conv1.weight.shape) == (64, 3, 7, 7) and model.conv1.stride == (2, 2)


def test_resnet18_forward_shape():
    model = resnet18(10).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_resnet_rejects_bad_arguments():
    with pytest.raises(ValueError, match="classes"):
        resnet18(1)


def test_augment_matches_a_per_image_crop_and_flip():
    x = torch.rand(6, 3, 32, 32)
    got = augment(x, torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(5)  # the same draws, in augment's order
    top = torch.randint(0, 9, (6,), generator=gen)
    left = torch.randint(0, 9, (6,), generator=gen)
    flip = torch.rand(6, generator=gen) < 0.5
    for k in range(6):
        padded = F.pad(x[k], (4, 4, 4, 4))
        crop = padded[:, top[k] : top[k] + 32, left[k] : left[k] + 32]
        if flip[k]:
            crop = crop.flip(-1)
        assert torch.equal(got[k], crop)
    assert flip.any() and not flip.all()


@pytest.mark.skipif(
    not (REPO / "src" / "otgap" / "data" / "cifar10.py").exists(),
    reason="needs otgap.data.cifar10 and rule cifar10_download (the data branch)",
)
def test_cifar_config_dry_run(tmp_path):
    """config/biostatis_cifar.yaml plans the download, 3 seeds x 3 arms (the authors' AdamW 3e-4
    and V6 1e-3, and the lr-matched AdamW) and the table."""
    proc = snakemake(
        "-n",
        "--configfile",
        "config/biostatis_cifar.yaml",
        "--config",
        f"results_root={tmp_path}/results",
        f"logs_root={tmp_path}/logs",
        f"data={{'root': '{tmp_path}/data'}}",
        "--",
        "biostatis_cifar_table",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts.get("biostatis_cifar_train") == 9
    assert "lr=0.00128" in proc.stdout + proc.stderr  # the lr-matched AdamW arm
    assert counts.get("biostatis_cifar_table") == 1
    assert counts.get("cifar10_download") == 1


def test_train_cifar_runs_and_records(tmp_path):
    """Two short epochs on random CIFAR-shaped data: history per epoch, state bytes, weights."""
    from otgap.data.classification import ClassificationData
    from otgap.train.cifar import CifarSettings, train_cifar

    gen = torch.Generator().manual_seed(0)
    data = ClassificationData(
        name="random",
        x_train=torch.rand(24, 3, 32, 32, generator=gen),
        y_train=torch.randint(0, 10, (24,), generator=gen),
        x_test=torch.rand(8, 3, 32, 32, generator=gen),
        y_test=torch.randint(0, 10, (8,), generator=gen),
        n_classes=10,
    )
    s = CifarSettings("biostatis", 1e-3, {"homeo_rate": 0.5}, seed=1, epochs=2, batch_size=16)
    history, summary, state = train_cifar(data, s)
    assert history["epoch"].tolist() == [0.0, 1.0, 2.0]
    assert history["test_acc"].between(0, 1).all()
    assert summary["steps_done"] == 4 and summary["train_seconds"] > 0
    n_tensors = sum(1 for _ in resnet18(10).parameters())
    assert summary["optimizer_state_bytes"] == 4 * 4 * 11_181_642 + 8 * n_tensors
    assert set(state) == set(resnet18(10).state_dict())
