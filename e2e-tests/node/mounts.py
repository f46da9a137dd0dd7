"""Mounts in the suite's private mount namespace: the host folders containerd and the kubelet
write to whatever their configuration says get a tmpfs, so nothing of theirs lands on the
host; and whatever they mounted under the work directory is unmounted before it is removed.
"""

import os
import subprocess

# Paths no option moves: containerd 1.6 keeps its shims' sockets in /run/containerd/s; the
# kubelet links every container's log into /var/log/containers and opens its device-plugin
# socket in /var/lib/kubelet/device-plugins whatever its --root-dir; skopeo (as root) keeps
# a blob cache in /var/lib/containers/cache.
HOST_PATHS = ("/run/containerd", "/var/log/containers", "/var/lib/kubelet",
              "/var/lib/containers")


def _unescape(field):
    # mountinfo escapes space, tab, newline and backslash as octal.
    return field.encode().decode("unicode_escape")


def mount_points():
    with open("/proc/self/mountinfo") as f:
        return [_unescape(line.split()[4]) for line in f]


def mounts_under(path):
    path = os.path.realpath(path).rstrip("/")
    return [m for m in mount_points() if m == path or m.startswith(path + "/")]


def unmount(path):
    if subprocess.run(["umount", path], capture_output=True).returncode != 0:
        # Busy (a process still holds it open): detach it, it goes when released.
        subprocess.run(["umount", "-l", path], capture_output=True)


def unmount_under(path):
    """Unmounts everything mounted at or below `path`, deepest first; returns what was."""
    found = mounts_under(path)
    for m in sorted(found, key=lambda m: m.count("/"), reverse=True):
        unmount(m)
    return found


class HostPaths:
    """A tmpfs on each of HOST_PATHS, in this (private) mount namespace only. A folder that
    had to be created for it is removed again at the end."""

    def __init__(self):
        self.created = []
        self.mounted = []

    def cover(self):
        for path in HOST_PATHS:
            if not os.path.isdir(path):
                os.makedirs(path)
                self.created.append(path)
            subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=64m",
                            "modelcar-prefetch-e2e", path], check=True, capture_output=True)
            self.mounted.append(path)

    def uncover(self):
        while self.mounted:
            path = self.mounted.pop()
            unmount_under(path)
        while self.created:
            path = self.created.pop()
            try:
                os.rmdir(path)
            except OSError:
                pass
