"""The scale suite's cases, registered once per node count: Nodes of realistic size; under the
recommended timeouts (asserted) the first pod after a fresh policy-server, pods sent at once
to one, and steady pods; the first pod under Kubewarden's default timeouts (measured only);
nodeLabelSelector.

Every first-pod case starts policy-server again first: its Node cache (one reflector per
kind, label and field selector, and in 1.35 field masks, kept for the life of the process
and shared by every policy) is built by the first `list_resources_all` call, and that wait
is what counts against the policy's evaluation limit. A warm cache left by an earlier case
would hide it."""

import json
import math
import os
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import audit
import gpu_nodes
from pods import (FIXTURES, CaseFailure, by_name, containers, expect, fixture_pod,
                  init_containers)
from processes import child_env

LLM_POD = "llm-inference-service-modelcar"
MODELCAR = "modelcar"
DENIAL = "Policy execution interrupted"


def percentile(values, p):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def mib(kib):
    return kib / 1024


def message(response):
    """The API server's answer to a create that failed, as a client shows it."""
    body = response.body
    if isinstance(body, dict):
        return body.get("message") or json.dumps(body)[:2000]
    return str(body)[:2000]


def outcome(response):
    """A measured first pod, in words: `admitted in X s` or `DENIED after X s: ...`."""
    if response.status == 201:
        return f"admitted in {response.seconds:.2f} s"
    text = message(response)
    kind = "DENIED" if "denied the request" in text else f"REJECTED (HTTP {response.status})"
    return f"{kind} after {response.seconds:.2f} s: {text}"


def seconds_list(values):
    """`0.51, 0.55 s`; an entry that is not a number (a refusal, in words) as it is."""
    if all(isinstance(v, float) for v in values):
        return ", ".join(f"{v:.2f}" for v in values) + " s"
    return ", ".join(f"{v:.2f} s" if isinstance(v, float) else str(v) for v in values)


def outcomes_text(responses, answer=True):
    """`admitted 3 of 3 (0.51, 0.55, 0.49 s)`, or each attempt in order and (with `answer`)
    the first refusal's answer: `DENIED 2 of 3: admitted 1.61 s, DENIED 1.72 s, ...: ...`."""
    refused = [r for r in responses if r.status != 201]
    if not refused:
        return f"admitted {len(responses)} of {len(responses)} " \
               f"({seconds_list([r.seconds for r in responses])})"
    kind = outcome(refused[0]).split(" after ")[0]
    each = ", ".join(f"{'admitted' if r.status == 201 else kind} {r.seconds:.2f} s"
                     for r in responses)
    text = f"{kind} {len(refused)} of {len(responses)}: {each}"
    return f"{text}: {message(refused[0])}" if answer else text


def create_pod(api, namespace):
    """POSTs the LLMInferenceService-shaped pod, which carries its own modelcar (so `auto`
    lists the Nodes). Returns (sent pod, response); the response body is the stored pod."""
    pod = fixture_pod(LLM_POD, namespace, prefix="scale")
    return pod, api.post(f"/api/v1/namespaces/{namespace}/pods", pod)


def expect_admitted(response, pod, what):
    text = message(response) if response.status != 201 else ""
    hint = ("\n(policy-server interrupted the policy while it waited for its Node cache: the "
            "evaluation limit, timeoutEvalSeconds, is too short for this many Nodes)"
            if DENIAL in text else "")
    expect(response.status == 201,
           f"{what}: {pod['metadata']['namespace']}/{pod['metadata']['name']} not admitted: "
           f"HTTP {response.status} after {response.seconds:.2f} s: {text}{hint}")
    return response.body


def expect_native_sidecar(stored):
    moved = by_name(init_containers(stored), MODELCAR)
    expect(by_name(containers(stored), MODELCAR) is None and moved is not None
           and moved.get("restartPolicy") == "Always",
           "the modelcar is not a native sidecar (an init container with restartPolicy "
           "Always), although every selected kubelet is 1.29 or later", stored)


def expect_init_container_fallback(stored, audit_log, webhook):
    """`auto` chose init containers: the modelcar stays a regular container, and the audit
    annotation says an old kubelet decided it."""
    expect(by_name(containers(stored), MODELCAR) is not None
           and by_name(init_containers(stored), MODELCAR) is None,
           "the modelcar was moved into the init containers although CPU nodes run kubelet "
           f"{gpu_nodes.KUBELET_OLD}", stored)
    meta = stored["metadata"]
    event = audit.create_event(audit_log, meta["namespace"], meta["name"])
    expect(event is not None, f"no audit event for the create of {meta['name']}")
    said = (event.get("annotations") or {}).get(f"{webhook}/prefetch", "")
    expect(f"runs kubelet {gpu_nodes.KUBELET_OLD}, older than" in said,
           f"the audit annotation {webhook}/prefetch does not name an old kubelet: {said!r}")
    return said


def fresh_policy_server(scale, attempt=0, attempts=1):
    """Kills policy-server and starts it again on its ports, as a restarted replica: an empty
    Node cache. Then waits `attempt / attempts` of a second before the caller sends its pod.

    Why the wait: policy-server counts the evaluation limit in ticks of a clock that starts
    with it and ticks every second; the limit is N ticks after the evaluation starts, so
    between N-1 and N seconds. A pod sent as soon as policy-server is ready always lands just
    after a tick and gets almost the whole N seconds; in a cluster the first pod comes at any
    moment. Spreading the attempts over the second measures the other phases too."""
    scale.policy_server.kill()
    scale.policy_server.start()
    time.sleep(attempt / attempts)


def memory(scale):
    """(VmRSS, VmHWM) of the running policy-server, KiB."""
    return scale.policy_server.rss_kib()


def memory_text(rss_peak):
    rss, peak = rss_peak
    return f"policy-server RSS {mib(rss):.0f} MiB, peak {mib(peak):.0f} MiB"


def steady_pods(scale, namespace, count, check):
    """`count` pods one at a time, each checked; returns their create seconds."""
    seconds = []
    for k in range(count):
        pod, r = create_pod(scale.api, namespace)
        check(expect_admitted(r, pod, f"steady pod {k + 1} of {count}"))
        seconds.append(r.seconds)
    return seconds


def latency_text(seconds):
    ms = [s * 1000 for s in seconds]
    return f"p50 {statistics.median(ms):.0f} ms, p99 {percentile(ms, 99):.0f} ms"


def module_answer_bytes(scale, workdir):
    """The bytes of the Node list the module receives, as kwctl of the same release answers
    its host call (policy-evaluator, the library policy-server runs): kwctl run against the
    API server, its host-capability exchange recorded. 1.31 sends whole Nodes, 1.35 applies
    the policy's field masks."""
    engine = scale.plane.engine
    record = os.path.join(workdir, f"nodes-exchange-{engine.version}.yml")
    request = os.path.join(FIXTURES, f"{LLM_POD}.json")
    env = child_env({"KUBECONFIG": scale.plane.kubeconfig,
                     "XDG_CACHE_HOME": os.path.join(workdir, "kwctl-cache"),
                     "XDG_DATA_HOME": os.path.join(workdir, "kwctl-data"),
                     "XDG_CONFIG_HOME": os.path.join(workdir, "kwctl-config")})
    argv = [engine.kwctl, "run", "--allow-context-aware", "--request-path", request,
            "--settings-json", json.dumps({"mode": "auto"}),
            "--record-host-capabilities-interactions", record, scale.module]
    trust = os.environ.get("KWCTL_SIGSTORE_TRUST_CONFIG")
    if trust:
        argv[2:2] = ["--sigstore-trust-config", trust]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    expect(result.returncode == 0 and '"allowed":true' in result.stdout,
           f"kwctl run failed ({result.returncode}):\n{result.stdout[-2000:]}"
           f"{result.stderr[-2000:]}")
    with open(record) as f:
        for line in f:
            key, _, value = line.strip().partition(": ")
            if key == "payload":
                # YAML's single-quoted scalar: '' stands for '
                payload = value[1:-1].replace("''", "'") if value.startswith("'") else \
                    json.loads(value)
                return len(payload.encode())
    raise CaseFailure(f"{record} holds no payload: {result.stderr[-2000:]}")


def register(cases, n, settings):
    """The cases for a cluster of `n` Nodes. `settings` names the namespaces and the
    recommended timeouts (scale.py's topology). Figures go to scale.figures[n]."""
    rec = f"timeoutEvalSeconds {settings.eval_seconds}, webhook timeoutSeconds " \
          f"{settings.webhook_seconds}"
    gpu_nodes_count = len([i for i in range(n) if gpu_nodes.is_gpu(i)])
    spread = (f"{settings.tries} policy-server starts, each pod sent 0 to "
              f"{(settings.tries - 1) / settings.tries:.2f} s after readiness")

    @cases.case(f"{n} Nodes: created through the API with their status, ~14 KB each")
    def nodes(scale):
        row = scale.figures.setdefault(n, {})
        api = scale.api
        if api.must(api.get("/api/v1/nodes?limit=1"), "list Nodes")["items"]:
            gpu_nodes.delete_all(api)  # an earlier size's Nodes, CPU ones downgraded
        seconds = gpu_nodes.create(api, n)
        listed = api.must(api.get("/api/v1/nodes?limit=1"), "list Nodes")
        left = listed["metadata"].get("remainingItemCount", 0) + len(listed["items"])
        expect(left == n, f"{left} Nodes listed, {n} created")
        size = gpu_nodes.stored_bytes(api, range(min(n, 10)))
        row.update(create_s=seconds, node_kb=size / 1000, total_mb=size * n / 1e6)
        return (f"{n} Nodes ({gpu_nodes_count} GPU) in {seconds:.1f} s, {n / seconds:.0f}/s; "
                f"{size / 1000:.1f} KB each as stored, {size * n / 1e6:.1f} MB in all")

    @cases.case(f"{n} Nodes: first pod after a fresh policy-server ({rec}) is admitted with a "
                f"native sidecar ({spread})")
    def first_pod(scale):
        row = scale.figures.setdefault(n, {})
        row["first"] = []
        for t in range(settings.tries):
            fresh_policy_server(scale, t, settings.tries)
            pod, r = create_pod(scale.api, settings.namespace)
            row["first"].append(r.seconds if r.status == 201 else outcome(r))
            expect_native_sidecar(expect_admitted(
                r, pod, f"first pod at {n} Nodes ({rec}), policy-server start {t + 1}"))
        row["rss_first"] = memory(scale)
        return (f"admitted in {seconds_list(row['first'])}; {memory_text(row['rss_first'])}")

    @cases.case(f"{n} Nodes: {settings.burst} pods at once after a fresh policy-server ({rec}) "
                "are all admitted with native sidecars")
    def burst(scale):
        # Each evaluation that finds no Node cache starts building one (policy-server keeps
        # no record of a build under way), as many at a time as it has evaluation workers:
        # a rollout that meets a restarted policy-server costs more than one pod.
        row = scale.figures.setdefault(n, {})
        fresh_policy_server(scale)
        with ThreadPoolExecutor(max_workers=settings.burst) as pool:
            sent = list(pool.map(lambda _: create_pod(scale.api, settings.namespace),
                                 range(settings.burst)))
        for k, (pod, r) in enumerate(sent):
            expect_native_sidecar(expect_admitted(
                r, pod, f"pod {k + 1} of {settings.burst} sent at once at {n} Nodes ({rec})"))
        row["burst"] = [r.seconds for _, r in sent]
        row["rss_burst"] = memory(scale)
        return (f"admitted in {seconds_list(row['burst'])}; {memory_text(row['rss_burst'])}")

    @cases.case(f"{n} Nodes: {settings.steady_pods} steady pods one at a time, all admitted with "
                "native sidecars")
    def steady(scale):
        row = scale.figures.setdefault(n, {})
        seconds = steady_pods(scale, settings.namespace, settings.steady_pods,
                              expect_native_sidecar)
        row["steady"] = seconds
        row["rss_steady"] = memory(scale)
        return f"{latency_text(seconds)}; {memory_text(row['rss_steady'])}"

    @cases.case(f"{n} Nodes: the Node list the module receives, as kwctl of the same "
                "release answers the call (field masks applied or not)")
    def answer(scale):
        row = scale.figures.setdefault(n, {})
        size = module_answer_bytes(scale, scale.plane.workdir)
        row["answer_bytes"] = size
        return (f"{size / 1e6:.2f} MB from kwctl {scale.plane.engine.kwctl_version}, "
                f"{size / n:.0f} bytes a Node")

    @cases.case(f"{n} Nodes: first pod with Kubewarden's default timeouts (2 s evaluation, "
                f"webhook 10 s), measured only ({spread})")
    def first_pod_default(scale):
        row = scale.figures.setdefault(n, {})
        responses = []
        for t in range(settings.tries):
            fresh_policy_server(scale, t, settings.tries)
            responses.append(create_pod(scale.api, settings.default_namespace)[1])
        row["default"] = outcomes_text(responses, answer=False)
        row["rss_default"] = memory(scale)
        return f"{outcomes_text(responses)}; {memory_text(row['rss_default'])}"

    @cases.case(f"{n} Nodes, CPU nodes on kubelet {gpu_nodes.KUBELET_OLD}: nodeLabelSelector "
                f"{gpu_nodes.GPU_SELECTOR!r} lists the {gpu_nodes_count} GPU nodes and decides "
                "native sidecars, first pod and steady")
    def selector(scale):
        row = scale.figures.setdefault(n, {})
        cpu = [i for i in range(n) if not gpu_nodes.is_gpu(i)]
        downgraded = gpu_nodes.set_kubelet(scale.api, cpu, gpu_nodes.KUBELET_OLD)
        fresh_policy_server(scale)
        pod, r = create_pod(scale.api, settings.gpu_namespace)
        row["selector_first_s"] = r.seconds if r.status == 201 else outcome(r)
        expect_native_sidecar(expect_admitted(r, pod, f"first pod at {n} Nodes with "
                                              "nodeLabelSelector"))
        seconds = steady_pods(scale, settings.gpu_namespace, settings.steady_pods,
                              expect_native_sidecar)
        row["selector_steady"] = seconds
        row["rss_selector"] = memory(scale)
        return (f"{len(cpu)} CPU kubelets set to {gpu_nodes.KUBELET_OLD} in {downgraded:.1f} s; "
                f"first pod admitted in {r.seconds:.2f} s; steady {latency_text(seconds)}; "
                f"{memory_text(row['rss_selector'])}")

    @cases.case(f"{n} Nodes, CPU nodes on kubelet {gpu_nodes.KUBELET_OLD}: without "
                "nodeLabelSelector the old kubelets mean init containers")
    def no_selector(scale):
        pod, r = create_pod(scale.api, settings.namespace)
        stored = expect_admitted(r, pod, f"pod at {n} Nodes without nodeLabelSelector")
        said = expect_init_container_fallback(stored, scale.audit_log, settings.webhook)
        return f"admitted in {r.seconds:.2f} s; audit annotation: {said[:160]}"
