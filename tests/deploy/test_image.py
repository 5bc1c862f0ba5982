"""The real image, built by `.ci/build-image` (podman/buildah) and run by `.ci/run-image`:
what it holds, how it runs, and the operator started from it reaching a recommendation
against the local stack (API emulator, simulated engines, a real Prometheus).

The image under test is ``$ALA_IMAGE`` when set (`.ci/run` builds it first), else the
script builds it here (its layers are cached: a second build takes seconds). Without
podman and buildah the tests skip and say how to get them.
"""

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from support.polling import wait_for

from ala_operator.constants import GROUP, PLURAL, VERSION
from ala_operator.devstack.fleet import SimulatedDeployment
from ala_operator.devstack.localstack import LocalStack

pytestmark = pytest.mark.image

ROOT = Path(__file__).resolve().parents[2]
BASE = f"/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}"


@pytest.fixture(scope="module")
def image():
    if os.environ.get("ALA_IMAGE"):
        return os.environ["ALA_IMAGE"]
    if os.environ.get("ALA_IMAGE_UNAVAILABLE"):
        pytest.skip(f"no image: {os.environ['ALA_IMAGE_UNAVAILABLE']}")
    if not (shutil.which("podman") and shutil.which("buildah")):
        pytest.skip("podman and buildah are not installed: apt-get install podman buildah mmdebstrap runc "
                    "(.ci/build-image does, .ci/run calls it)")
    out = subprocess.run(["bash", str(ROOT / ".ci" / "build-image")], capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


def run_image(image, *command, opts="", timeout=120, **kwargs):
    env = dict(os.environ, RUN_IMAGE_OPTS=opts)
    return subprocess.run(["bash", str(ROOT / ".ci" / "run-image"), image, *command], capture_output=True,
                          text=True, timeout=timeout, env=env, **kwargs)


def test_the_commands_answer(image):
    for command in (["ala-operator", "--help"], ["ala", "--help"]):
        out = run_image(image, *command)
        assert out.returncode == 0 and "usage" in out.stdout, out.stderr


def test_bad_start_and_development_commands_fail_clearly(image):
    """No traceback: a missing model file names itself, and the development stack (left
    out of the image) says what to install."""
    bad = run_image(image, "ala-operator", "run", opts="-e ALA_MODEL_FILE=/nope/missing.ala")
    assert bad.returncode == 2 and "missing.ala" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    demo = run_image(image, "ala-operator", "demo", "--duration", "1")
    assert demo.returncode == 2 and "ala[devstack]" in demo.stderr, demo.stderr


def test_non_root_read_only_no_test_or_build_packages(image):
    script = ("import importlib.util as u, os, sys; "
              "print(os.getuid(), os.getgid()); "
              "print([m for m in ('kmock', 'pytest', 'hypothesis', 'pip', 'setuptools', 'ala_operator.devstack') "
              "if u.find_spec(m.split('.')[0]) and (m.count('.') == 0 or u.find_spec(m))]); "
              "open('/tmp/ok', 'w').write('x'); "
              "\ntry:\n open('/opt/x', 'w')\nexcept OSError as e: print('readonly', e.errno)")
    out = run_image(image, "python3", "-c", script)
    assert out.returncode == 0, out.stderr
    uid_gid, present, readonly = out.stdout.split("\n")[:3]
    assert uid_gid == "10001 10001"
    assert present == "[]", f"the image holds {present}"
    assert readonly.startswith("readonly"), out.stdout


def test_dependencies_are_the_pinned_ones(image):
    pins = dict(line.split("==") for line in (ROOT / "deploy" / "image-constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    script = ("import importlib.metadata as m, json; "
              "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))")
    out = run_image(image, "python3", "-c", script)
    installed = {k.lower().replace("_", "-"): v for k, v in json.loads(out.stdout).items()}
    installed.pop("ala")
    pinned = {k.lower().replace("_", "-"): v for k, v in pins.items()}
    assert installed == pinned


def test_the_embedded_model_loads_without_a_refit(image):
    """The default model is saved with its fitted state under the image's own libraries:
    loading it must not fit (a refit would take about 30 s at every start)."""
    script = ("import os, time; from ala.estimator import ALA; from ala.persistence import load_model\n"
              "def no(*a, **k): raise SystemExit('refitted')\n"
              "ALA.fit = no\n"
              "t = time.perf_counter(); m = load_model(os.environ['ALA_MODEL_FILE'])\n"
              "print(len(m.configs_), round(time.perf_counter() - t, 2))")
    out = run_image(image, "python3", "-c", script)
    assert out.returncode == 0, out.stdout + out.stderr
    curves, seconds = out.stdout.split()
    assert int(curves) > 500
    print(f"embedded model: {curves} curves, loaded in {seconds} s")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_operator_from_the_image_reaches_a_recommendation(image, require_prometheus, held_out, tmp_path):
    truth, _ = held_out
    fleet = [SimulatedDeployment("default", "imaged", "vllm", truth, lambda t: 2 * truth(24), input_tokens=1024,
                                 output_tokens=1024, startup_s=1)]
    with LocalStack(fleet, require_prometheus=True) as stack:
        stack.request("PATCH", "/apis/apps/v1/namespaces/default/deployments/imaged/scale",
                      {"spec": {"replicas": 2}})
        resource = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "LLMDeployment", "metadata": {"name": "imaged"},
                    "spec": {"targetRef": {"name": "imaged"}, "model": "meta-llama/Meta-Llama-3-8B",
                             "hardware": {"accelerator": "H100"}, "engine": {"name": "vllm"},
                             "workload": {"inputTokens": 1024, "outputTokens": 1024},
                             "demand": {"tokensPerSecond": 6000},
                             "prometheus": {"url": stack.prometheus_url, "selector": 'service="imaged"',
                                            "rateWindowSeconds": 10, "stepSeconds": 5},
                             "policy": {"refitIntervalSeconds": 10, "warmupSeconds": 0}}}
        assert stack.request("POST", BASE, resource)[0] == 201
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(Path(stack.kubeconfig).read_text())
        kubeconfig.chmod(0o644)
        opts = (f"--network host -v {kubeconfig}:/etc/ala/kubeconfig:ro -e KUBECONFIG=/etc/ala/kubeconfig "
                f"-e ALA_TIMER_SECONDS=2 -e ALA_BIND_ADDRESS=127.0.0.1 -e ALA_METRICS_PORT={_port()} "
                f"-e ALA_HEALTH_PORT={_port()}")
        log = open(tmp_path / "operator.log", "w")
        started = time.monotonic()
        env = dict(os.environ, RUN_IMAGE_OPTS=opts)
        process = subprocess.Popen(["bash", str(ROOT / ".ci" / "run-image"), image, "ala-operator", "run"],
                                   stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            def recommended():
                status = stack.request("GET", f"{BASE}/imaged")[1].get("status") or {}
                return ((status.get("recommendation") or {}).get("replicas") or {}).get("target")
            target = wait_for(recommended, 180)
            took = time.monotonic() - started
            text = (tmp_path / "operator.log").read_text()
            assert target, text[-3000:]
            assert "model loaded from /opt/ala/share/ala/default.ala" in text, text[-3000:]
            assert "refitting from training.csv" not in text
            status = stack.request("GET", f"{BASE}/imaged")[1]["status"]
            assert status["recommendation"]["livePoints"] >= 0
            print(f"operator from the image: first recommendation {target} replicas after {took:.1f} s")
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()
