import sys

from lflab import netlab

sys.path.insert(0, netlab.ensure_collection_path())
