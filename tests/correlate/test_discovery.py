"""Topology import: a Kubernetes API, a real Prometheus's /api/v1/targets and a service
graph query, each from a local server speaking the format (Prometheus is the Debian
package's binary: required on CI, skipped elsewhere when missing)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from baton.cli import app
from baton.correlate.discovery import SERVICE_GRAPH_QUERY, discover
from baton.correlate.topology import Topology, load_catalogue
from tests.helpers import free_port, require_program


def pod(name, ns, node, labels, owner=None):
    meta = {"name": name, "namespace": ns, "labels": labels}
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1]}]
    return {"metadata": meta, "spec": {"nodeName": node}}


NODES = {
    "kind": "NodeList",
    "items": [
        {"metadata": {"name": f"n{i}", "labels": {"topology.kubernetes.io/zone": z}}}
        for i, z in ((1, "eu-1a"), (2, "eu-1a"), (3, "eu-1b"))
    ],
}
PODS = {
    "kind": "PodList",
    "items": [
        pod(
            "cart-7d4f9-abcde",
            "shop",
            "n1",
            {"app": "cart", "pod-template-hash": "7d4f9"},
            ("ReplicaSet", "cart-7d4f9"),
        ),
        pod(
            "cart-7d4f9-fghij",
            "shop",
            "n3",
            {"app": "cart", "pod-template-hash": "7d4f9"},
            ("ReplicaSet", "cart-7d4f9"),
        ),
        pod("redis-0", "shop", "n2", {"app": "redis"}, ("StatefulSet", "redis")),
        pod("loose", "shop", "n4", {"app.kubernetes.io/name": "debugger"}),
    ],
}
SERVICES = {
    "kind": "ServiceList",
    "items": [
        {"metadata": {"name": "cart", "namespace": "shop"}, "spec": {"selector": {"app": "cart"}}},
        {"metadata": {"name": "other", "namespace": "ops"}, "spec": {"selector": {"app": "cart"}}},
    ],
}
GRAPH = {
    "status": "success",
    "data": {
        "resultType": "vector",
        "result": [
            {"metric": {"client": "frontend", "server": "cart"}, "value": [1, "42"]},
            {"metric": {"client": "cart", "server": "redis"}, "value": [1, "17"]},
            {"metric": {"client": "cart", "server": "legacy"}, "value": [1, "0"]},
        ],
    },
}


@pytest.fixture
def api():
    """A local server answering like a Kubernetes API server and a Prometheus query API."""
    asked = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            url = urlparse(self.path)
            asked.append((url.path, parse_qs(url.query)))
            body = {
                "/api/v1/nodes": NODES,
                "/api/v1/pods": PODS,
                "/api/v1/services": SERVICES,
                "/api/v1/query": GRAPH,
            }.get(url.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(body or {}).encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", asked
    server.shutdown()


def test_kubernetes_api_and_service_graph_make_a_topology(api):
    url, asked = api
    defs = {d.name: d for d in discover(kubernetes=[url], service_graph=[url])}
    assert defs["n1"].kind == "node" and defs["n1"].zone == "eu-1a"
    assert defs["eu-1b"].kind == "zone"
    assert defs["cart"].hosts == ("n1", "n3")  # the Deployment, found through its ReplicaSet
    assert defs["cart"].endpoints == ("http://cart.shop.svc",)  # not ops' same-selector one
    assert defs["redis"].hosts == ("n2",) and defs["debugger"].hosts == ("n4",)
    assert defs["n4"].kind == "node"  # a node the pods name but the list did not
    assert defs["frontend"].depends_on == ("cart",)
    assert defs["cart"].depends_on == ("redis",)  # calls that carried no requests don't count
    assert "legacy" not in defs
    query = next(q for path, q in asked if path == "/api/v1/query")
    assert query["query"] == [SERVICE_GRAPH_QUERY]
    graph = Topology(defs)
    assert {"n1", "eu-1a", "redis"} <= graph.upstream("frontend")


def test_import_command_writes_a_catalogue_from_files(tmp_path):
    kube = tmp_path / "kube.json"
    listed = [dict(i, kind="Node") for i in NODES["items"]]
    listed += [dict(i, kind="Pod") for i in PODS["items"]]
    kube.write_text(json.dumps({"kind": "List", "items": listed}))
    graph = tmp_path / "graph.json"
    graph.write_text(json.dumps(GRAPH))
    out = tmp_path / "catalogue.yaml"
    result = CliRunner().invoke(
        app,
        [
            "topology",
            "import",
            "--kubernetes",
            str(kube),
            "--service-graph",
            str(graph),
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output.strip().splitlines()[-1])
    names = {s["name"] for s in printed["services"]}
    assert {"cart", "redis", "frontend", "n1", "eu-1a"} <= names
    services = {d.name: d for d in load_catalogue(yaml.safe_load(out.read_text()))}
    assert services["cart"].hosts == ("n1", "n3") and services["frontend"].depends_on == ("cart",)
    missing = CliRunner().invoke(app, ["topology", "import", "--kubernetes", str(tmp_path / "x")])
    assert missing.exit_code != 0 and "cannot read JSON" in missing.output


@pytest.mark.integration
def test_real_prometheus_targets_name_services_and_hosts(tmp_path):
    require_program("prometheus", "prometheus")
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1h"},
                "scrape_configs": [
                    {
                        "job_name": "checkout",
                        "static_configs": [
                            {"targets": ["10.1.2.3:8080"], "labels": {"node": "node-a"}},
                            {"targets": ["10.1.2.4:8080"], "labels": {"node": "node-b"}},
                        ],
                    },
                    {"job_name": "db-exporter", "static_configs": [{"targets": ["db1:9187"]}]},
                ],
            }
        )
    )
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until its discovery has listed the targets
            try:
                data = httpx.get(f"{url}/api/v1/targets", timeout=2).json()["data"]
                if len(data["activeTargets"]) == 3:
                    break
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(0.2)
        defs = {d.name: d for d in discover(prometheus_targets=[url])}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert defs["checkout"].hosts == ("node-a", "node-b")
    assert defs["db-exporter"].hosts == ("db1",) and defs["db1"].kind == "host"
