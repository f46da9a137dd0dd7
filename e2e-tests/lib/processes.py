"""The programs the suite starts: each with its own log file, each stopped by its PID."""

import os
import signal
import socket
import subprocess
import time

# Children must reach nothing but loopback: kube-apiserver and policy-server's Kubernetes
# client honour proxy variables (and policy-server ignores NO_PROXY).
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "all_proxy")


def child_env(extra=None):
    env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}
    env.update(extra or {})
    return env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Failed(Exception):
    pass


class Processes:
    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.started = []  # (name, Popen, log path), in start order
        self.cleanup = []  # callables run after every program is stopped, newest first

    def start(self, name, argv, env=None, cwd=None):
        log_path = os.path.join(self.log_dir, f"{name}.log")
        log = open(log_path, "ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=child_env(env), cwd=cwd)
        log.close()
        self.started.append((name, proc, log_path))
        return proc

    def log_tail(self, name, lines=30):
        for n, _, path in self.started:
            if n == name:
                with open(path, "rb") as f:
                    text = f.read().decode(errors="replace")
                return "\n".join(text.splitlines()[-lines:])
        return ""

    def wait_ready(self, name, proc, ready, timeout):
        """Polls ready() until it returns true; fails early when the program exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise Failed(f"{name} exited with {proc.returncode} before it was ready:\n"
                             f"{self.log_tail(name)}")
            try:
                if ready():
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise Failed(f"{name} not ready after {timeout}s:\n{self.log_tail(name)}")

    def stop_all(self):
        """SIGTERM each started program by PID, newest first; SIGKILL what does not exit."""
        for name, proc, _ in reversed(self.started):
            if proc.poll() is None:
                proc.terminate()
                proc.send_signal(signal.SIGCONT)  # a frozen program takes its SIGTERM now
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        while self.cleanup:
            self.cleanup.pop()()
