"""A throw-away CA and the keys the control plane needs, made with openssl in the run's
temporary directory. Nothing here outlives the run."""

import os
import subprocess
from dataclasses import dataclass


@dataclass
class Certs:
    ca_cert: str
    serving_cert: str
    serving_key: str
    sa_key: str
    sa_pub: str

    def ca_pem(self):
        with open(self.ca_cert, "rb") as f:
            return f.read()


def _openssl(openssl, *args, cwd):
    subprocess.run([openssl, *args], cwd=cwd, check=True, capture_output=True)


def make(openssl, directory):
    d = os.path.join(directory, "pki")
    os.makedirs(d)
    _openssl(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
             "-out", "ca.crt", "-days", "2", "-subj", "/CN=modelcar-prefetch-e2e-ca", cwd=d)
    # One serving certificate for every TLS endpoint: all of them listen on 127.0.0.1, and
    # the API server checks webhook certificates against the IP SAN. kube-rs (kwctl's
    # Kubernetes client) checks an API server reached by IP against kubernetes.default.svc.
    with open(os.path.join(d, "serving.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n"
                "basicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n")
    _openssl(openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "serving.key",
             "-out", "serving.csr", "-subj", "/CN=127.0.0.1", cwd=d)
    _openssl(openssl, "x509", "-req", "-in", "serving.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "serving.crt", "-days", "2", "-extfile", "serving.ext",
             cwd=d)
    _openssl(openssl, "genrsa", "-out", "sa.key", "2048", cwd=d)
    _openssl(openssl, "rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)
    path = lambda name: os.path.join(d, name)  # noqa: E731
    return Certs(path("ca.crt"), path("serving.crt"), path("serving.key"), path("sa.key"),
                 path("sa.pub"))
