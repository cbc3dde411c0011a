"""Data sources: FitzHugh-Nagumo simulation and masks, MedMNIST, scikit-learn digits."""
