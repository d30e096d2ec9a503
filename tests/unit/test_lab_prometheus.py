# -*- coding: utf-8 -*-
"""The lab's Prometheus tools: lab/endpoints/lab_prometheus.py against a Prometheus HTTP API on loopback (a
stdlib server answering like Prometheus does), lab/report.py's kernel column and lab/picture.py's PNG."""

import http.server
import importlib.util
import json
import os
import struct
import subprocess
import sys
import threading
import urllib.parse

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SINCE = 1000.0


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def vector(rows):
    return {"resultType": "vector", "result": [{"metric": m, "value": [0, str(v)]} for m, v in rows]}


class FakePrometheus(http.server.BaseHTTPRequestHandler):
    """Counters before and after the run; collector4's series only appears during the run."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        url = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/api/v1/query" and q["query"].startswith("up"):
            data = vector([({"instance": "replicator1"}, 1), ({"instance": "replicator2"}, 1)])
        elif url.path == "/api/v1/query":
            before = float(q["time"]) <= SINCE
            rows = [({"collector": "collector1", "port": "514"}, 7 if before else 47),
                    ({"collector": "collector2", "port": "162"}, 3 if before else 23)]
            if not before:
                rows.append(({"collector": "collector4", "port": "514"}, 20))
            data = vector(rows)
        elif url.path == "/api/v1/query_range":
            data = {"resultType": "matrix", "result": [
                {"metric": {"collector": "collector1"}, "values": [[SINCE, "0"], [SINCE + 2, "4.5"]]}]}
        elif url.path == "/api/v1/alerts":
            data = {"alerts": [{"labels": {"alertname": "LogfwdrRateLimited"}, "state": "firing"},
                               {"labels": {"alertname": "LogfwdrCopiesDropped"}, "state": "pending"}]}
        else:
            self.send_error(404)
            return
        body = json.dumps({"status": "success", "data": data}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def prometheus():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakePrometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()


def run_tool(url, *extra):
    proc = subprocess.run([sys.executable, os.path.join(REPO, "lab", "endpoints", "lab_prometheus.py"),
                           "--since", str(SINCE), "--until", str(SINCE + 30), "--url", url, "--wait", "3", *extra],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    return proc


def test_copies_are_the_rise_of_the_kernel_counters(prometheus, tmp_path):
    proc = run_tool(prometheus)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["up"] == {"replicator1": 1, "replicator2": 1}
    # 47 - 7, 23 - 3, and a series that did not exist before counts from 0
    assert out["copies"] == {"collector1": {"514": 40}, "collector2": {"162": 20}, "collector4": {"514": 20}}
    assert out["rates"] == {"collector1": [[SINCE, 0.0], [SINCE + 2, 4.5]]}
    assert out["alerts"] == ["LogfwdrRateLimited"]

    summary = {"run_id": "r1", "collectors": {
        "collector1": {"syslog": {"messages": 40, "sources": ["10.10.1.21"]},
                       "netflow": {"messages": 9, "sources": ["10.10.1.21"]}},
        "collector2": {"snmptrap": {"messages": 20, "sources": ["10.10.1.21"]}}}}
    out["counted"] = {"syslog": 514, "snmptrap": 162}   # as prometheus.yml adds lab_counted_protocols
    table = load("lab/report.py", "lab_report").render(summary, out)
    assert "agents up replicator1=1, replicator2=1; alerts firing: LogfwdrRateLimited" in table
    rows = dict((line.split()[0], line.split()[1:3]) for line in table.splitlines()
                if line.startswith("  ") and not line.strip().startswith("protocol"))
    assert rows["syslog"] == ["40", "40"] and rows["snmptrap"] == ["20", "20"] and rows["netflow"] == ["9", "-"]

    pytest.importorskip("matplotlib")
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "prom.json").write_text(json.dumps(out))
    png = tmp_path / "demo.png"
    subprocess.run([sys.executable, os.path.join(REPO, "lab", "picture.py"), str(tmp_path / "summary.json"),
                    str(tmp_path / "prom.json"), str(png)], check=True, stdout=subprocess.PIPE)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (13 * 90, 5 * 90)


def test_too_few_agents_up_fails(prometheus):
    proc = run_tool(prometheus, "--targets", "3")
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["up"] == {"replicator1": 1, "replicator2": 1}
