"""The images the node runs, built on this machine: no registry but our own is reachable.

Everything is Debian's static busybox (busybox-static) in an OCI layout made with umoci:
- pause: the sandbox image containerd's CRI needs (`sandbox_image`);
- server: a model-server stand-in that exits 1 at once when its model file is missing, as
  KServe's servers do with an empty model directory, else serves (sleeps);
- slow-server: the same, waiting a few seconds before it looks, as a Python server does
  while it imports its libraries;
- model: a modelcar, `FROM busybox` plus /models/model.bin of incompressible data, running as
  root (no user set), like the model images KServe users build.

All images share one busybox layer, so pulling a model pulls just its model layer once the
server is on the node, as on a real node. The layout is cached under /var/tmp (or
E2E_NODE_IMAGE_CACHE), keyed by what goes into it: building a 200 MiB layer costs CPU, which
the suite's timings must not share.
"""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from processes import child_env

# Bump when the recipe below changes in a way the key does not see.
RECIPE = "1"
CACHE_ROOT = os.environ.get("E2E_NODE_IMAGE_CACHE", "/var/tmp/modelcar-prefetch-e2e-node-images")
MODEL_PATH = "/mnt/models/model.bin"
DEFAULT_MODEL_MIB = 200
SLOW_SERVER_SECONDS = 5
# The shell and tools a modelcar's `sh -c "ln -s ... && sleep infinity"` and probes use.
APPLETS = ("sh", "ln", "sleep", "test", "[", "true", "echo", "cat", "ls", "mkdir", "id")
PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Fixed times keep layers byte-identical between builds of the same recipe.
EPOCH = "2026-01-01T00:00:00Z"
EPOCH_SECONDS = 1767225600

# The stand-in model server. Arguments (KServe's --model_name=... and so on) are ignored.
SERVER_SCRIPT = """\
#!/bin/sh
model="${MODEL_FILE:-%s}"
if [ "${STARTUP_SECONDS:-0}" != 0 ]; then
  echo "model-server stand-in: starting, looking for $model in ${STARTUP_SECONDS}s"
  sleep "$STARTUP_SECONDS"
fi
if [ ! -e "$model" ]; then
  echo "model-server stand-in: $model not found, exiting" >&2
  exit 1
fi
echo "model-server stand-in: serving $model"
trap 'exit 0' TERM INT
while :; do sleep 3600 & wait $!; done
""" % MODEL_PATH

# The pod's sandbox: idles until containerd stops it, exits at once on SIGTERM.
PAUSE_SCRIPT = """\
#!/bin/sh
trap 'exit 0' TERM INT
while :; do sleep 3600 & wait $!; done
"""


@dataclass
class Built:
    """An OCI layout holding every image, tagged pause, server, slow-server and model."""
    layout: str
    model_bytes: int

    def manifest(self, tag):
        with open(os.path.join(self.layout, "index.json")) as f:
            index = json.load(f)
        for m in index["manifests"]:
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
                return m["digest"], self._blob_json(m["digest"])
        raise KeyError(tag)

    def _blob_json(self, digest):
        algo, hexa = digest.split(":")
        with open(os.path.join(self.layout, "blobs", algo, hexa)) as f:
            return json.load(f)

    def identity(self, tag):
        """What containerd keeps of the image once pulled: manifest, config and layer
        digests (content store) and the layers' chain IDs (snapshot names)."""
        digest, manifest = self.manifest(tag)
        config = self._blob_json(manifest["config"]["digest"])
        chain, chain_ids = None, []
        for diff_id in config["rootfs"]["diff_ids"]:
            chain = diff_id if chain is None else \
                "sha256:" + hashlib.sha256(f"{chain} {diff_id}".encode()).hexdigest()
            chain_ids.append(chain)
        return ImageIdentity(digest, manifest["config"]["digest"],
                             [layer["digest"] for layer in manifest["layers"]], chain_ids)


@dataclass
class ImageIdentity:
    manifest: str
    config: str
    layers: list
    chain_ids: list


def _run(argv, **kw):
    # nice: the node suite measures timings; the image build must not compete with them.
    result = subprocess.run(["nice", "-n", "10", *argv], capture_output=True, text=True,
                            env=child_env(), **kw)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}):\n"
                           f"{result.stdout}{result.stderr}")
    return result.stdout


def _file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_static(path):
    """No ELF program interpreter: runs in an image with nothing but itself."""
    with open(path, "rb") as f:
        elf = f.read(1 << 16)
    if elf[:4] != b"\x7fELF" or elf[4] != 2:  # 64-bit ELF only
        return False
    phoff = int.from_bytes(elf[32:40], "little")
    phentsize = int.from_bytes(elf[54:56], "little")
    phnum = int.from_bytes(elf[56:58], "little")
    for i in range(phnum):
        entry = phoff + i * phentsize
        if int.from_bytes(elf[entry:entry + 4], "little") == 3:  # PT_INTERP
            return False
    return True


def cache_key(busybox, model_bytes):
    h = hashlib.sha256()
    for part in (RECIPE, _file_digest(busybox), str(model_bytes), SERVER_SCRIPT, PAUSE_SCRIPT,
                 " ".join(APPLETS), str(SLOW_SERVER_SECONDS)):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:16]


def _stage_busybox(busybox, root):
    os.makedirs(os.path.join(root, "bin"))
    shutil.copy(busybox, os.path.join(root, "bin", "busybox"))
    for applet in APPLETS:
        os.symlink("busybox", os.path.join(root, "bin", applet))
    # The kubelet and runc want these to exist in a rootfs; busybox images have them.
    for d in ("tmp", "proc", "sys", "dev", "etc", "mnt"):
        os.makedirs(os.path.join(root, d))
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    with open(os.path.join(root, "etc", "group"), "w") as f:
        f.write("root:x:0:\nnobody:x:65534:\n")


def _stage_script(root, name, text):
    os.makedirs(root)
    path = os.path.join(root, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)


def _stage_model(root, size):
    os.makedirs(os.path.join(root, "models"))
    # Random bytes: gzip cannot shrink the layer, so the pull moves `size` bytes.
    with open(os.path.join(root, "models", "model.bin"), "wb") as f:
        left = size
        while left:
            n = min(left, 4 << 20)
            f.write(os.urandom(n))
            left -= n


def _fix_times(root):
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (EPOCH_SECONDS, EPOCH_SECONDS),
                     follow_symlinks=False)
    os.utime(root, (EPOCH_SECONDS, EPOCH_SECONDS))


def _build(umoci, busybox, model_bytes, layout, stage):
    image = lambda tag: f"{layout}:{tag}"  # noqa: E731
    hist = ["--history.created", EPOCH]

    def layer(name, fill, tag=None):
        """One layer over `base`, staged by fill(root) with fixed times; as `tag` if given."""
        root = os.path.join(stage, name)
        fill(root)
        _fix_times(root)
        _run([umoci, "insert", *hist, "--image", image("base"), *(["--tag", tag] if tag else []),
              root, "/"])

    _run([umoci, "init", "--layout", layout])
    _run([umoci, "new", "--image", image("base")])
    layer("busybox", lambda root: _stage_busybox(busybox, root))
    _run([umoci, "config", *hist, "--image", image("base"), "--created", EPOCH,
          "--config.env", PATH, "--config.cmd", "sh"])

    layer("pause", lambda root: _stage_script(root, "pause", PAUSE_SCRIPT), tag="pause")
    _run([umoci, "config", *hist, "--image", image("pause"), "--clear", "config.cmd",
          "--config.entrypoint", "/pause"])

    layer("server", lambda root: _stage_script(root, "server", SERVER_SCRIPT), tag="server")
    # The pod's args (KServe's --model_name=...) reach the script as $1...: ignored.
    _run([umoci, "config", *hist, "--image", image("server"), "--clear", "config.cmd",
          "--config.entrypoint", "/server"])
    _run([umoci, "config", *hist, "--image", image("server"), "--tag", "slow-server",
          "--config.env", f"STARTUP_SECONDS={SLOW_SERVER_SECONDS}"])

    layer("model", lambda root: _stage_model(root, model_bytes), tag="model")
    _run([umoci, "gc", "--layout", layout])


def build(umoci, busybox, model_bytes=DEFAULT_MODEL_MIB << 20, cache_root=CACHE_ROOT):
    """The images, from the cache when this recipe was built before. Other recipes' builds
    in the cache are removed: each holds a model of hundreds of MiB."""
    if not is_static(busybox):
        raise RuntimeError(f"{busybox} is not a static busybox: install Debian's busybox-static"
                           " or point BUSYBOX at one")
    key = cache_key(busybox, model_bytes)
    target = os.path.join(cache_root, key)
    if not os.path.isfile(os.path.join(target, "index.json")):
        os.makedirs(cache_root, exist_ok=True)
        work = tempfile.mkdtemp(prefix=f".{key}-", dir=cache_root)
        try:
            _build(umoci, busybox, model_bytes, os.path.join(work, "layout"),
                   os.path.join(work, "stage"))
            try:
                os.rename(os.path.join(work, "layout"), target)
            except OSError:
                if not os.path.isfile(os.path.join(target, "index.json")):
                    raise  # else a concurrent run built the same: use that one
        finally:
            shutil.rmtree(work, ignore_errors=True)
    for other in os.listdir(cache_root):
        if other != key and not other.startswith("."):
            shutil.rmtree(os.path.join(cache_root, other), ignore_errors=True)
    return Built(target, model_bytes)


def push(skopeo, built, tag, port, reference):
    """Copies the layout's `tag` to the registry on 127.0.0.1:`port` as `reference`
    (repository:tag)."""
    _run([skopeo, "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
          f"oci:{built.layout}:{tag}", f"docker://127.0.0.1:{port}/{reference}"], timeout=600)
