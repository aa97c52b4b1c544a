import sys
from pathlib import Path

# the fake worker module must be importable by name in pool/Dask worker processes
sys.path.insert(0, str(Path(__file__).parent))
