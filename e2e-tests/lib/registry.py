"""A plain-HTTP OCI registry on 127.0.0.1: the annotated module pushed by kwctl as a release
would push it (control-plane suite), the node suite's images (pushed by skopeo), and, started
from the command line, the kwctl suite's registry (registry.bats):

  python3 e2e-tests/lib/registry.py serve DIR

starts docker-registry (DOCKER_REGISTRY, else PATH) serving from DIR on a free port, prints
`127.0.0.1:PORT PID` once it answers /v2/ and leaves it running (its log: DIR/docker-registry.log);
the caller stops it by that PID."""

import json
import os
import shutil
import subprocess
import sys
import urllib.request

if __name__ == "__main__":
    sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree

from processes import Failed, Processes, child_env, free_port  # noqa: E402

REPOSITORY = "modelcar-prefetch/policies/modelcar-prefetch:e2e"


def _v2_ok(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2) as resp:
        return resp.status == 200


def start_registry(procs, docker_registry, workdir, name="docker-registry"):
    """A docker-registry serving from `workdir`; returns its port."""
    port = free_port()
    config = os.path.join(workdir, f"{name}.yml")
    with open(config, "w") as f:
        json.dump({
            "version": 0.1,
            "log": {"level": "info"},
            "storage": {"filesystem": {"rootdirectory": os.path.join(workdir, f"{name}-data")}},
            "http": {"addr": f"127.0.0.1:{port}"},
        }, f)
    proc = procs.start(name, [docker_registry, "serve", config])
    procs.wait_ready(name, proc, lambda: _v2_ok(port), 30)
    return port


def start(procs, docker_registry, workdir):
    """Returns (module URI, sources.yml path)."""
    port = start_registry(procs, docker_registry, workdir)
    # kwctl and policy-server read the same file: plain HTTP for this registry only.
    sources = os.path.join(workdir, "sources.yml")
    with open(sources, "w") as f:
        json.dump({"insecure_sources": [f"127.0.0.1:{port}"]}, f)
    return f"registry://127.0.0.1:{port}/{REPOSITORY}", sources


def push(kwctl, module_file, uri, sources, workdir):
    env = child_env({"XDG_CACHE_HOME": os.path.join(workdir, "kwctl-cache"),
                     "XDG_DATA_HOME": os.path.join(workdir, "kwctl-data"),
                     "XDG_CONFIG_HOME": os.path.join(workdir, "kwctl-config")})
    result = subprocess.run([kwctl, "push", "--sources-path", sources, module_file, uri],
                            env=env, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"kwctl push {uri} failed ({result.returncode}):\n"
                           f"{result.stdout}{result.stderr}")


MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")


def retag(port, repository, tag, new_tag):
    """Puts the manifest of `repository:tag` under `new_tag` as well: the same image under a
    new name, without copying a blob."""
    base = f"http://127.0.0.1:{port}/v2/{repository}/manifests"
    req = urllib.request.Request(f"{base}/{tag}", headers={"Accept": ", ".join(MANIFEST_TYPES)})
    with urllib.request.urlopen(req, timeout=30) as resp:
        body, media_type = resp.read(), resp.headers["Content-Type"]
    put = urllib.request.Request(f"{base}/{new_tag}", data=body, method="PUT",
                                 headers={"Content-Type": media_type})
    with urllib.request.urlopen(put, timeout=30) as resp:
        return resp.headers.get("Docker-Content-Digest")


def serve(directory):
    """The command line's `serve DIR`: returns the exit status."""
    docker_registry = os.environ.get("DOCKER_REGISTRY") or shutil.which("docker-registry")
    if not docker_registry:
        print("docker-registry is not installed: apt-get install docker-registry", file=sys.stderr)
        return 1
    os.makedirs(directory, exist_ok=True)
    procs = Processes(directory)
    try:
        port = start_registry(procs, docker_registry, directory)
    except Failed as e:
        procs.stop_all()
        print(e, file=sys.stderr)
        return 1
    _, proc, _ = procs.started[-1]
    print(f"127.0.0.1:{port} {proc.pid}", flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "serve":
        sys.exit(f"usage: {sys.argv[0]} serve DIR")
    sys.exit(serve(os.path.abspath(sys.argv[2])))
