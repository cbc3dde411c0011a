"""otgap: reproduction library for the OptimizationTheoryGap paper and the systems around it.

The library holds no Snakemake code: every function is importable and testable from a prompt.
The workflow under ``workflow/`` calls thin entry points in ``scripts/`` that use this package.
"""

__version__ = "0.1.0"
