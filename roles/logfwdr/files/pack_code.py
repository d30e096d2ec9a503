# -*- coding: utf-8 -*-
# Copyright: (c) 2026, logfwdr contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pack the program's code for the host; run on the controller by tasks/replication.yml.

pack_code.py ARCHIVE SOURCE_DIR PREFIX: ARCHIVE holds SOURCE_DIR/*.py under PREFIX, every directory of PREFIX and
an empty __init__.py in each of them but the last, all owned by root. The same code gives the same bytes: an
entry's time comes from its content, so unarchive's comparison finds no change on a second run, while Python's
bytecode cache (which trusts time and size) still sees changed code as changed.
"""

from __future__ import absolute_import, division, print_function

import glob
import hashlib
import io
import os
import sys
import tarfile

__metaclass__ = type

EPOCH = 1600000000


def entry(name, data=None):
    info = tarfile.TarInfo(name)
    info.uid = info.gid = 0
    info.uname = info.gname = 'root'
    if data is None:
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, EPOCH
    else:
        info.size, info.mode = len(data), 0o644
        info.mtime = EPOCH + int(hashlib.sha256(data).hexdigest()[:6], 16)
    return info


def pack(out, src, prefix):
    parts = prefix.split('/')
    with tarfile.open(out, 'w', format=tarfile.GNU_FORMAT) as tar:
        for i in range(1, len(parts) + 1):
            tar.addfile(entry('/'.join(parts[:i])))
        for i in range(1, len(parts)):
            tar.addfile(entry('/'.join(parts[:i]) + '/__init__.py', b''), io.BytesIO(b''))
        for path in sorted(glob.glob(os.path.join(src, '*.py'))):
            with open(path, 'rb') as f:
                data = f.read()
            tar.addfile(entry(prefix + '/' + os.path.basename(path), data), io.BytesIO(data))


if __name__ == '__main__':
    pack(*sys.argv[1:4])
