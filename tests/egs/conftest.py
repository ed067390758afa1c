"""Makes tests/egs/corpus_fixtures.py importable from the recipe tests (no packages in tests/)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
