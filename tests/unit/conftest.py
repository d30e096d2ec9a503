import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import netlab  # noqa: E402

sys.path.insert(0, netlab.ensure_collection_path())
