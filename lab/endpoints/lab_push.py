# Lab endpoints: write a host's lab files in one module run (endpoints.yml, via ansible.builtin.command with
# stdin). A template or copy task costs two module runs, seconds each on a UML guest, and the lab has dozens.
# stdin: {"dirs": [path], "files": {path: text}, "modes": {path: "0755"}} (files are root's, 0644 unless named
# in modes). Prints each path it created or changed, one per line, so that an unchanged host prints nothing.
import json
import os
import sys

spec = json.load(sys.stdin)
for path in spec.get("dirs", []):
    if not os.path.isdir(path):
        os.makedirs(path, mode=0o755)
        print(path)
for dest, text in spec["files"].items():
    mode = int(spec.get("modes", {}).get(dest, "0644"), 8)
    data = text.encode()
    if not data.endswith(b"\n"):
        data += b"\n"
    try:
        with open(dest, "rb") as old:
            same = old.read() == data
        st = os.stat(dest)
        same = same and (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (mode, 0, 0)
    except FileNotFoundError:
        same = False
    if same:
        continue
    os.makedirs(os.path.dirname(dest), mode=0o755, exist_ok=True)
    tmp = dest + ".lab-push"
    with open(tmp, "wb") as new:
        new.write(data)
    os.chown(tmp, 0, 0)
    os.chmod(tmp, mode)
    os.replace(tmp, dest)
    print(dest)
