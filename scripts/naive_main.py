"""`python main.py` after the plain, full import of the AWS provider bindings.

The reference path for tests/test_provider_seam.py (same JSON?) and scripts/bench.py
(how much faster is the seam?): because the whole package is already in sys.modules,
components/aws.py uses it as is instead of installing its stub.

    python scripts/naive_main.py [main.py arguments...]
"""

import os
import runpy
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent

# Same setting as components/__init__.py, which only runs after the import below.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import cdktf_cdktf_provider_aws  # noqa: E402,F401  the slow path, on purpose

sys.path.insert(0, str(PROJECT_DIR))
sys.argv = [str(PROJECT_DIR / "main.py"), *sys.argv[1:]]
runpy.run_path(str(PROJECT_DIR / "main.py"), run_name="__main__")
