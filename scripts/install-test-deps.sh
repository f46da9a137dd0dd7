#!/usr/bin/env bash
# Installs what the test suites need beyond the Rust toolchain, from Debian's packages, when
# it is missing: bats and jq (kwctl suite), docker-registry (the OCI registry the suites push
# the policy to), etcd-server (the control-plane suite); containerd, runc, skopeo, umoci, a
# static busybox and the loopback CNI plugin (the node suite). kwctl, policy-server,
# kube-apiserver, kubelet and crictl are not packaged: see README "Testing".
#   scripts/install-test-deps.sh    (run by .ci/run; needs root or sudo for apt-get)
set -euo pipefail

# command (or a file, when it starts with /) -> Debian package
wanted=(bats:bats jq:jq docker-registry:docker-registry etcd:etcd-server
	containerd:containerd runc:runc skopeo:skopeo umoci:umoci
	/bin/busybox:busybox-static /usr/lib/cni/loopback:containernetworking-plugins)

missing=()
for entry in "${wanted[@]}"; do
	what="${entry%%:*}"
	if [ "${what#/}" != "$what" ]; then
		[ -x "$what" ] || missing+=("${entry#*:}")
	else
		command -v "$what" >/dev/null 2>&1 || missing+=("${entry#*:}")
	fi
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-test-deps: apt-get is not available; install ${missing[*]} yourself" >&2
	exit 0
fi
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "install-test-deps: apt-get install ${missing[*]}" >&2
# The packaged services must not start on their own: the suites start what they need.
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	"${missing[@]}" >/dev/null || {
	"${sudo[@]}" apt-get update >/dev/null
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		"${missing[@]}" >/dev/null
}
