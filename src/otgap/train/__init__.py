"""Training infrastructure shared by every stage.

- ``otgap.train.loop``: the training loop (checkpoint/resume, signals, divergence).
- ``otgap.train.determinism``: seeding and RNG-state capture.
- ``otgap.train.provenance``: provenance records for sidecar files.
- ``otgap.train.sequence`` and ``otgap.train.eos``: the two experiments' training jobs.

Import from the submodule that defines a name: the workflow finds each rule's source dependencies
from its import statements (otgap.deps), so explicit imports keep reruns precise.
"""
