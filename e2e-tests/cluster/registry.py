"""A plain-HTTP OCI registry on 127.0.0.1 holding the annotated module, pushed by kwctl as a
release would push it."""

import json
import os
import subprocess
import urllib.request

from processes import child_env, free_port

REPOSITORY = "modelcar-prefetch/policies/modelcar-prefetch:e2e"


def _v2_ok(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2) as resp:
        return resp.status == 200


def start(procs, docker_registry, workdir):
    """Returns (module URI, sources.yml path)."""
    port = free_port()
    config = os.path.join(workdir, "registry.yml")
    with open(config, "w") as f:
        json.dump({
            "version": 0.1,
            "log": {"level": "info"},
            "storage": {"filesystem": {"rootdirectory": os.path.join(workdir, "registry-data")}},
            "http": {"addr": f"127.0.0.1:{port}"},
        }, f)
    proc = procs.start("docker-registry", [docker_registry, "serve", config])
    procs.wait_ready("docker-registry", proc, lambda: _v2_ok(port), 30)
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
