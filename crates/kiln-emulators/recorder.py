#!/usr/bin/env python3
"""A recording stand-in for the two management planes that have no emulator: Azure Resource
Manager (Compute Gallery, storage account keys) and Google's Compute Engine and Resource Manager
APIs. It keeps just enough state to answer the reads that follow a write (a created gallery
version can be read back, a share shows in the gallery's sharing profile, an IAM policy set is
the one got), answers long-running operations the way each cloud does (Azure: an
Azure-AsyncOperation URL that reports InProgress once, then Succeeded; Google: an Operation that
is RUNNING, then DONE), and records every request so tests can assert the bodies Kiln sent.

Usage: recorder.py AZURITE_KEY  -> prints the port it listens on (127.0.0.1), then serves.
GET /_requests returns the recorded requests as JSON.
"""

import json
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

ACCOUNT_KEY = sys.argv[1] if len(sys.argv) > 1 else ""
LOCK = threading.Lock()
REQUESTS = []
RESOURCES = {}  # path (no query) -> JSON resource
OPS = {}  # operation id -> polls left before it is done
SEQ = [0]


def next_id():
    SEQ[0] += 1
    return str(SEQ[0])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=None, headers=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def base(self):
        return "http://%s" % self.headers.get("Host")

    def handle_any(self):
        url = urlsplit(self.path)
        path, query = url.path, url.query
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        body = json.loads(raw) if raw else None
        if path == "/_requests":
            with LOCK:
                return self.reply(200, REQUESTS)
        with LOCK:
            REQUESTS.append(
                {
                    "method": self.command,
                    "path": path,
                    "query": query,
                    "body": body,
                    "authorization": self.headers.get("Authorization", ""),
                }
            )
            if path.startswith("/subscriptions/"):
                return self.azure(path, query, body)
            return self.google(path, body)

    # ---- Azure Resource Manager ----
    def azure_async(self, status, resource):
        op = next_id()
        OPS[op] = 1
        headers = {
            "Azure-AsyncOperation": "%s/_azure_ops/%s" % (self.base(), op),
            "Retry-After": "0",
        }
        return self.reply(status, resource, headers)

    def azure(self, path, query, body):
        if path.endswith("/listKeys"):
            return self.reply(200, {"keys": [{"keyName": "key1", "value": ACCOUNT_KEY}]})
        if path.endswith("/share") and self.command == "POST":
            gallery = RESOURCES.setdefault(path[: -len("/share")], {"properties": {}})
            profile = gallery["properties"].setdefault("sharingProfile", {"permissions": "Groups", "groups": []})
            for g in body.get("groups", []):
                have = next((x for x in profile["groups"] if x["type"] == g["type"]), None)
                if have is None:
                    have = {"type": g["type"], "ids": []}
                    profile["groups"].append(have)
                for i in g["ids"]:
                    if body["operationType"] == "Add" and i not in have["ids"]:
                        have["ids"].append(i)
                    if body["operationType"] == "Remove" and i in have["ids"]:
                        have["ids"].remove(i)
            op = next_id()
            OPS[op] = 1
            return self.reply(202, None, {"Location": "%s/_azure_loc/%s" % (self.base(), op), "Retry-After": "0"})
        if self.command == "GET":
            if "/providers/Microsoft.Compute/galleries/" in path and path.count("/") == 8:
                # The gallery itself exists (Kiln does not create galleries).
                g = RESOURCES.setdefault(path, {"properties": {}})
                g["properties"].setdefault("sharingProfile", {"permissions": "Groups", "groups": []})
                return self.reply(200, g)
            if path in RESOURCES:
                return self.reply(200, RESOURCES[path])
            return self.reply(404, {"error": {"code": "ResourceNotFound", "message": "not found: " + path}})
        if self.command == "PUT":
            res = dict(body)
            res["id"] = path
            res.setdefault("properties", {})["provisioningState"] = "Creating"
            RESOURCES[path] = res
            return self.azure_async(201, res)
        if self.command == "PATCH":
            res = RESOURCES.get(path)
            if res is None:
                return self.reply(404, {"error": {"code": "ResourceNotFound", "message": path}})
            if "tags" in body:
                res["tags"] = body["tags"]
            prof = body.get("properties", {}).get("publishingProfile", {})
            res["properties"].setdefault("publishingProfile", {}).update(prof)
            return self.azure_async(200, res)
        if self.command == "DELETE":
            if RESOURCES.pop(path, None) is None:
                return self.reply(204)
            return self.azure_async(202, None)
        return self.reply(405, {"error": {"code": "MethodNotAllowed", "message": self.command}})

    # ---- Google: Compute Engine and Resource Manager ----
    def operation(self, project, target):
        name = "operation-" + next_id()
        OPS[name] = 1
        return {"kind": "compute#operation", "name": name, "status": "RUNNING", "targetLink": target,
                "selfLink": "%s/compute/v1/projects/%s/global/operations/%s" % (self.base(), project, name)}

    def google(self, path, body):
        parts = path.strip("/").split("/")
        if parts[:2] == ["v3", "projects"] and len(parts) == 3:
            # A stable made-up project number per project id.
            return self.reply(200, {"name": "projects/%d" % (100000000000 + zlib.crc32(parts[2].encode()) % 899999999999),
                                    "projectId": parts[2]})
        if parts[:2] != ["compute", "v1"] or len(parts) < 6:
            return self.reply(404, {"error": {"code": 404, "message": "no such API: " + path}})
        project = parts[3]
        if parts[4:6] == ["global", "operations"] and len(parts) == 7:
            left = OPS.get(parts[6], 0)
            OPS[parts[6]] = left - 1
            op = {"name": parts[6], "status": "RUNNING" if left > 0 else "DONE"}
            return self.reply(200, op)
        if parts[4:6] != ["global", "images"]:
            return self.reply(404, {"error": {"code": 404, "message": "no such API: " + path}})
        images = "/".join(parts[:6])
        if len(parts) == 6 and self.command == "POST":
            key = "/%s/%s" % (images, body["name"])
            if key in RESOURCES:
                return self.reply(409, {"error": {"code": 409, "message": "already exists"}})
            img = dict(body)
            img["status"] = "READY"
            img["selfLink"] = "https://compute.googleapis.com" + key
            RESOURCES[key] = img
            return self.reply(200, self.operation(project, img["selfLink"]))
        key = "/%s/%s" % (images, parts[6])
        img = RESOURCES.get(key)
        if img is None:
            return self.reply(404, {"error": {"code": 404, "message": "The resource '%s' was not found" % key}})
        if len(parts) == 7 and self.command == "GET":
            return self.reply(200, img)
        if len(parts) == 7 and self.command == "DELETE":
            del RESOURCES[key]
            return self.reply(200, self.operation(project, img["selfLink"]))
        verb = parts[7]
        if verb == "getIamPolicy":
            return self.reply(200, img.get("_policy", {"version": 1, "etag": "BwYA"}))
        if verb == "setIamPolicy":
            pol = body["policy"]
            pol["etag"] = "BwY" + next_id()
            img["_policy"] = pol
            return self.reply(200, pol)
        if verb == "deprecate":
            if body.get("state") in (None, "", "ACTIVE"):
                img.pop("deprecated", None)
            else:
                img["deprecated"] = body
            return self.reply(200, self.operation(project, img["selfLink"]))
        return self.reply(404, {"error": {"code": 404, "message": "no such verb: " + verb}})

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path.startswith("/_azure_ops/"):
            op = url.path.rsplit("/", 1)[1]
            with LOCK:
                left = OPS.get(op, 0)
                OPS[op] = left - 1
                if left <= 0:
                    # Done: what was being created is now provisioned.
                    for r in RESOURCES.values():
                        if r.get("properties", {}).get("provisioningState") == "Creating":
                            r["properties"]["provisioningState"] = "Succeeded"
            return self.reply(200, {"status": "InProgress" if left > 0 else "Succeeded"}, {"Retry-After": "0"})
        if url.path.startswith("/_azure_loc/"):
            op = url.path.rsplit("/", 1)[1]
            with LOCK:
                left = OPS.get(op, 0)
                OPS[op] = left - 1
            if left > 0:
                return self.reply(202, None, {"Location": self.base() + url.path, "Retry-After": "0"})
            return self.reply(200, None)
        return self.handle_any()

    do_PUT = do_POST = do_PATCH = do_DELETE = handle_any


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
