"""Data sources: FitzHugh-Nagumo simulation and masks; image classification sets (scikit-learn
digits, MedMNIST, MNIST, CIFAR-10) as ``dataset.ClassificationData``, fetched and verified by
``fetch``."""
