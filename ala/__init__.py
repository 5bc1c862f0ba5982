"""ALA: throughput-versus-batch models of LLM serving with calibrated uncertainty.

Pure computation (numpy, scipy, scikit-learn, pandas): no Kubernetes, no HTTP.
"""

from .benchmarks import BenchmarkError, load_benchmarks, read_benchmarks
from .catalog import Catalog, UnknownAcceleratorError, UnknownModelError
from .estimator import ALA
from .throughput import ThroughputCurve

__all__ = ["ALA", "BenchmarkError", "Catalog", "ThroughputCurve", "UnknownAcceleratorError",
           "UnknownModelError", "load_benchmarks", "read_benchmarks"]
__version__ = "0.1.0"
