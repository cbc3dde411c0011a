"""Which training samples a run descends and measures: first-N (the paper) or seeded stratified.

The paper and Cohen et al. take the first N samples. On a file sorted by class that is one class
only, so every subset here is checked: a class present in the training part but missing from
the subset stops the run with a message that says what to change. ``stratified`` instead draws,
with a private seeded generator, from each class in proportion to its share of the training part
(largest remainders; at least one sample of every class when N allows), and returns the indices
in increasing order.
"""

from __future__ import annotations

import torch

SUBSET_MODES = ("first", "stratified")


def class_counts(labels: torch.Tensor, n_classes: int) -> list[int]:
    """Samples per class ``0..n_classes-1``."""
    return torch.bincount(labels.detach().cpu().reshape(-1), minlength=n_classes).tolist()


def subset_indices(
    labels: torch.Tensor,
    n: int | None,
    *,
    mode: str = "first",
    seed: int = 0,
    n_classes: int | None = None,
    what: str = "subset",
) -> torch.Tensor:
    """Indices (int64, increasing) of ``n`` samples (all when ``n`` is None) chosen by ``mode``.

    Raises ``ValueError`` if ``n`` exceeds the samples, ``mode`` is unknown, or a class present
    in ``labels`` is missing from the chosen subset (``what`` names the subset in the message).
    """
    labels = labels.detach().cpu().reshape(-1)
    total = len(labels)
    if mode not in SUBSET_MODES:
        raise ValueError(f"{what}: unknown subset mode {mode!r}; choose one of {SUBSET_MODES}")
    if n is None:
        n = total
    if not 1 <= n <= total:
        raise ValueError(f"{what}: asks for {n} samples, but the training part has {total}")
    n_classes = int(labels.max()) + 1 if n_classes is None else n_classes
    if mode == "first" or n == total:
        idx = torch.arange(n)
    else:
        idx = _stratified(labels, n, n_classes, seed)
    _check_classes(labels, idx, n_classes, mode, what)
    return idx


def _stratified(labels: torch.Tensor, n: int, n_classes: int, seed: int) -> torch.Tensor:
    counts = torch.bincount(labels, minlength=n_classes).to(torch.float64)
    present = counts > 0
    share = counts / counts.sum() * n
    take = share.floor()
    if n >= int(present.sum()):  # every present class gets at least one sample
        take = torch.where(present, take.clamp(min=1), take)
    remainder = share - share.floor()
    while int(take.sum()) > n:  # the minimum of one overshot: take back from the largest
        take[int(torch.argmax(torch.where(take > 1, take, -1.0)))] -= 1
    order = torch.argsort(remainder, descending=True, stable=True)
    i = 0
    while int(take.sum()) < n:
        c = int(order[i % n_classes])
        if take[c] < counts[c]:
            take[c] += 1
        i += 1
    gen = torch.Generator().manual_seed(int(seed))
    chosen = []
    for c in range(n_classes):
        members = torch.nonzero(labels == c).reshape(-1)
        perm = torch.randperm(len(members), generator=gen)
        chosen.append(members[perm[: int(take[c])]])
    return torch.sort(torch.cat(chosen)).values


def _check_classes(labels, idx, n_classes, mode, what) -> None:
    full = class_counts(labels, n_classes)
    sub = class_counts(labels[idx], n_classes)
    missing = [c for c in range(n_classes) if full[c] > 0 and sub[c] == 0]
    if missing:
        hint = (
            "use eos.subset: stratified (a seeded draw from every class) or a larger subset"
            if mode == "first"
            else f"raise the subset size to at least {sum(1 for x in full if x)} samples"
        )
        raise ValueError(
            f"{what}: the {mode} {len(idx)} samples miss class(es) {missing} of the training "
            f"part (class counts in the subset: {sub}); {hint}"
        )
