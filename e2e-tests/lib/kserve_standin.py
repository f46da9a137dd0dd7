#!/usr/bin/env python3
"""A STAND-IN for KServe's pod mutating webhook, not KServe.

It reproduces only what KServe's pod webhook does to a modelcar pod, as written in KServe's
sources (pkg/webhook/admission/pod/storage_initializer_injector.go, InjectModelcar and
createModelContainer/createModelInitContainer, tags v0.13.0 and v0.14.0), with
`enableModelcar: true`:

- acts on pods with the label `serving.kserve.io/inferenceservice` whose annotation
  `internal.serving.kserve.io/storage-initializer-sourceuri` starts with `oci://`;
- adds the emptyDir volume `kserve-provision-location`, mounts it at /mnt in
  `kserve-container` (and `transformer-container`), sets MODEL_INIT_MODE=async there;
- with uidModelcar set, replaces kserve-container's whole securityContext with
  {runAsUser: uid} (what v0.12 to v0.17 do);
- only when no container named `modelcar` is in spec.containers: appends `modelcar`
  (image = the URI minus `oci://`, `ln -s` args, 10m/15Mi requests = limits,
  FallbackToLogsOnError, {runAsUser: uid} when set), and from v0.14 also appends the init
  container `modelcar-init`;
- sets shareProcessNamespace: true;
- answers with a JSON Patch from the pod it received to the pod it built
  (KServe: admission.PatchResponseFromRaw).

The version and uidModelcar come from the URL path, so one process serves every namespace
setup: /mutate-pods/v0.13, /mutate-pods/v0.14, /mutate-pods/v0.13/uid-1010.
"""

import argparse
import base64
import copy
import json
import ssl
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ISVC_LABEL = "serving.kserve.io/inferenceservice"
SOURCE_URI = "internal.serving.kserve.io/storage-initializer-sourceuri"
OCI = "oci://"
VOLUME = "kserve-provision-location"
USER_CONTAINER = "kserve-container"
TRANSFORMER_CONTAINER = "transformer-container"
MODEL_PATH = "/mnt/models"
MODELCAR_RESOURCES = {"limits": {"cpu": "10m", "memory": "15Mi"},
                      "requests": {"cpu": "10m", "memory": "15Mi"}}
VERSIONS = ("v0.13", "v0.14")


def _container(pod, name):
    for c in pod["spec"].get("containers") or []:
        if c.get("name") == name:
            return c
    return None


def _add_mount(container):
    mounts = container.setdefault("volumeMounts", [])
    if not any(m.get("name") == VOLUME for m in mounts):
        mounts.append({"name": VOLUME, "mountPath": "/mnt"})


def inject_modelcar(pod, version, uid):
    """KServe's InjectModelcar on `pod` in place. Returns an error message or None."""
    uri = ((pod.get("metadata") or {}).get("annotations") or {}).get(SOURCE_URI)
    if uri is None or not uri.startswith(OCI):
        return None
    spec = pod["spec"]
    volumes = spec.setdefault("volumes", [])
    if not any(v.get("name") == VOLUME for v in volumes):
        volumes.append({"name": VOLUME, "emptyDir": {}})
    image = uri[len(OCI):]
    user = _container(pod, USER_CONTAINER)
    if user is None:
        return f"no container found with name {USER_CONTAINER}"
    env = user.setdefault("env", [])
    for e in env:
        if e.get("name") == "MODEL_INIT_MODE":
            e["value"] = "async"
            break
    else:
        env.append({"name": "MODEL_INIT_MODE", "value": "async"})
    _add_mount(user)
    transformer = _container(pod, TRANSFORMER_CONTAINER)
    if transformer is not None:
        _add_mount(transformer)
    if uid is not None:
        user["securityContext"] = {"runAsUser": uid}
    # KServe's only "already injected" test: a `modelcar` among the regular containers.
    if _container(pod, "modelcar") is None:
        modelcar = {
            "name": "modelcar", "image": image,
            "args": ["sh", "-c", f"ln -s /proc/$$$$/root/models {MODEL_PATH} && sleep infinity"],
            "resources": copy.deepcopy(MODELCAR_RESOURCES),
            "volumeMounts": [{"name": VOLUME, "mountPath": "/mnt"}],
            "terminationMessagePolicy": "FallbackToLogsOnError",
        }
        if uid is not None:
            modelcar["securityContext"] = {"runAsUser": uid}
        spec["containers"].append(modelcar)
        if version != "v0.13":
            spec.setdefault("initContainers", []).append({
                "name": "modelcar-init", "image": image,
                "args": ["sh", "-c",
                         f"echo 'Pre-fetching modelcar {image}: ' && [ -d /models ] && "
                         "[ \"$$(ls -A /models)\" ] && echo 'OK ... Prefetched and valid "
                         "(/models exists)' || (echo 'NOK ... Prefetched but modelcar is "
                         "invalid (/models does not exist or is empty)' && exit 1)"],
                "resources": copy.deepcopy(MODELCAR_RESOURCES),
                "terminationMessagePolicy": "FallbackToLogsOnError",
            })
    spec["shareProcessNamespace"] = True
    return None


def _pointer(path, key):
    return f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"


def json_patch(old, new, path=""):
    """RFC 6902 operations that turn `old` into `new`: appended list items are `add`s,
    everything else is replaced at the deepest level that differs."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        ops = [{"op": "remove", "path": _pointer(path, k)} for k in old if k not in new]
        for k, v in new.items():
            if k in old:
                ops += json_patch(old[k], v, _pointer(path, k))
            else:
                ops.append({"op": "add", "path": _pointer(path, k), "value": v})
        return ops
    if isinstance(old, list) and isinstance(new, list) and len(new) >= len(old):
        ops = []
        for i, item in enumerate(old):
            ops += json_patch(item, new[i], _pointer(path, i))
        ops += [{"op": "add", "path": _pointer(path, "-"), "value": v} for v in new[len(old):]]
        return ops
    return [{"op": "replace", "path": path, "value": new}]


def parse_path(path):
    """/mutate-pods/<version>[/uid-<n>] -> (version, uid) or None. The API server adds a
    ?timeout= query."""
    parts = urllib.parse.urlsplit(path).path.strip("/").split("/")
    if len(parts) not in (2, 3) or parts[0] != "mutate-pods" or parts[1] not in VERSIONS:
        return None
    uid = None
    if len(parts) == 3:
        if not parts[2].startswith("uid-") or not parts[2][4:].isdigit():
            return None
        uid = int(parts[2][4:])
    return parts[1], uid


def review(body, version, uid):
    request = body["request"]
    response = {"uid": request["uid"], "allowed": True}
    pod = request.get("object") or {}
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if request.get("operation") == "CREATE" and ISVC_LABEL in labels:
        mutated = copy.deepcopy(pod)
        error = inject_modelcar(mutated, version, uid)
        if error:
            response.update(allowed=False, status={"code": 500, "message": error})
        else:
            ops = json_patch(pod, mutated)
            if ops:
                response["patchType"] = "JSONPatch"
                response["patch"] = base64.b64encode(json.dumps(ops).encode()).decode()
            name = (pod.get("metadata") or {}).get("name", "?")
            print(f"{version} uid={uid} pod={request.get('namespace')}/{name} "
                  f"ops={[o['op'] + ' ' + o['path'] for o in ops]}", flush=True)
    return {"apiVersion": body.get("apiVersion", "admission.k8s.io/v1beta1"),
            "kind": "AdmissionReview", "response": response}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send(200 if urllib.parse.urlsplit(self.path).path == "/healthz" else 404, {})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        config = parse_path(self.path)
        if config is None:
            self._send(404, {"error": f"unknown path {self.path}"})
            return
        self._send(200, review(body, *config))

    def log_message(self, *args):
        pass  # one line per mutation is printed by review()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"KServe pod-webhook stand-in on https://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
