"""Registry of image classifiers for the Edge-of-Stability stage (A.2).

Every entry is built as ``CLASSIFIERS[name](input_shape, n_classes, **hyper)``.
"""

from otgap.registry import Registry

CLASSIFIERS = Registry(
    "classifier",
    {
        "mlp": "otgap.models.mlp:MLP",
        "cnn": "otgap.models.cnn:SmallCNN",
        "landau1": "otgap.models.landau:LandauNet1",
        "landau1_nobn": "otgap.models.landau:LandauNet1NoBN",
        "landau2": "otgap.models.landau:LandauNet2",
    },
)
