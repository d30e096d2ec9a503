"""Stand-in for the get-pip.py that ansible-test downloads from a host outside the package registries.

ansible-test runs it (with pip's command-line options) inside each fresh sanity virtualenv. It installs pip from
the Python standard library's ensurepip, then the requested pip version and packages from the package index.
"""
import subprocess
import sys

GET_PIP_ONLY = ("--no-setuptools", "--no-wheel")

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", "-q"] + [a for a in sys.argv[1:] if a not in GET_PIP_ONLY])
