#!/usr/bin/python3
"""File: tests/deploy/manifests_test.py

Checks the container build file (broker/deploy/container/Containerfile) and the
Kubernetes examples (broker/deploy/k8s/) against each other and against the
build: the YAML parses and names real fields, the broker and the workers mount
the socket and segment directories at the same paths from the same host paths,
the uid and gids line up with the ones the image creates, the probes reach
/healthz and /readyz on the metrics port, and the image builds what the
top-level CMakeLists.txt needs and installs. Runs `hadolint` on the
Containerfile when it is on PATH (Debian bookworm does not package it).

    /usr/bin/python3 tests/deploy/manifests_test.py [REPO_ROOT]

Needs python3-yaml. ctest runs it as deploy.manifests.
"""

import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import unittest

import yaml

from containerfile import (apt_packages, entrypoint, image_identity, last_option_values,
                           parse_containerfile, run_words, stages)
from k8s_fields import check_fields, quantity_bytes

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONTAINERFILE = "broker/deploy/container/Containerfile"
K8S_DIR = "broker/deploy/k8s"
BASE_IMAGES = {"debian:bookworm", "debian:bookworm-slim"}
# What the top-level CMakeLists.txt finds -> the Debian package that provides it.
BUILD_PACKAGE = {
    "liburing": "liburing-dev", "libxxhash": "libxxhash-dev", "libsystemd": "libsystemd-dev",
    "Boost": "libboost-dev", "spdlog": "libspdlog-dev", "nlohmann_json": "nlohmann-json3-dev",
    "OpenSSL": "libssl-dev", "PkgConfig": "pkg-config", "Threads": "build-essential",
    "tomlplusplus": "libtomlplusplus-dev", "CURL": "libcurl4-openssl-dev",
}
# A -dev package -> the runtime package the linked program needs (None: headers only).
RUNTIME_PACKAGE = {
    "liburing-dev": "liburing2", "libxxhash-dev": "libxxhash0", "libspdlog-dev": "libspdlog1.10",
    "libssl-dev": "libssl3", "libsystemd-dev": "libsystemd0", "libboost-dev": None,
    "nlohmann-json3-dev": None, "libtomlplusplus-dev": "libtomlplusplus3",
    "libcurl4-openssl-dev": "libcurl4",
}
IN_BASE_IMAGE = {"libsystemd0", "libstdc++6", "libgcc-s1", "libc6"}


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


class ContainerfileTest(unittest.TestCase):
    def setUp(self):
        self.instructions = parse_containerfile(read(CONTAINERFILE))
        self.stages = stages(self.instructions)
        self.build, self.final = self.stages[0], self.stages[-1]

    def test_instructions_are_dockerfile_instructions(self):
        known = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
                 "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK",
                 "SHELL"}
        for keyword, rest, ignores in self.instructions:
            self.assertIn(keyword, known, rest)
            # The one rule silenced: apt packages are bookworm's current versions.
            self.assertLessEqual(set(ignores), {"DL3008"}, f"hadolint ignores at {keyword} {rest}")

    def test_debian_bookworm_multi_stage(self):
        self.assertGreaterEqual(len(self.stages), 2, "build and runtime stages")
        for image, _, _ in self.stages:
            self.assertIn(image, BASE_IMAGES, "every stage starts from Debian bookworm")
        self.assertIsNotNone(self.build[1], "the build stage is named (FROM ... AS NAME)")

    def test_runs_as_fixed_non_root_user(self):
        users = [rest for k, rest, _ in self.final[2] if k == "USER"]
        self.assertTrue(users, "the runtime stage sets USER")
        user = users[-1]
        self.assertRegex(user, r"^\d+$", "USER by number (runAsNonRoot), without a group "
                         "(else the runtime drops the supplementary groups of /etc/group)")
        ids = image_identity(self.final)
        self.assertEqual(int(user), ids["uid"])
        self.assertNotEqual(ids["uid"], 0)
        self.assertNotIn(ids["workers_gid"], (0, ids["gid"]))

    def test_build_stage_covers_cmake_dependencies(self):
        top = read("CMakeLists.txt")
        found = re.findall(r"^\s*find_package\((\w+)", top, re.M)
        found += re.findall(r"^\s*pkg_check_modules\(\w+\s+REQUIRED\s+IMPORTED_TARGET\s+(\S+)\)",
                            top, re.M)
        packages = set(apt_packages(self.build))
        for dep in found:
            self.assertIn(dep, BUILD_PACKAGE, f"tests/deploy does not know the package of {dep}")
            self.assertIn(BUILD_PACKAGE[dep], packages,
                          f"CMakeLists.txt finds {dep}; the build stage lacks {BUILD_PACKAGE[dep]}")
        for tool in ("cmake", "ninja-build"):
            self.assertIn(tool, packages)
        runtime = set(apt_packages(self.final))
        for dev in packages & set(RUNTIME_PACKAGE):
            lib = RUNTIME_PACKAGE[dev]
            if lib is not None and lib not in IN_BASE_IMAGE:
                self.assertIn(lib, runtime, f"{dev} is linked; the runtime stage lacks {lib}")
        self.assertFalse({p for p in runtime if p.endswith("-dev")}, "no -dev in the runtime")

    def test_builds_release_and_installs_what_it_copies(self):
        commands = " ".join(" ".join(w) for w in run_words(self.build))
        for flag in ("-G Ninja", "-DCMAKE_BUILD_TYPE=Release", "-DMODELPOOL_BUILD_TESTS=OFF",
                     "-DMODELPOOL_BUILD_BENCH=OFF", "-DMODELPOOL_BUILD_PYTHON=OFF"):
            self.assertIn(flag, commands)
        prefix = re.search(r"cmake --install build --prefix (\S+)", commands)
        self.assertTrue(prefix, "the build stage runs cmake --install build --prefix DIR")
        # Where `cmake --install` puts the two programs (GNUInstallDirs: sbin and bin).
        self.assertRegex(read("broker/CMakeLists.txt"),
                         r"install\(TARGETS modelpoold RUNTIME DESTINATION \$\{CMAKE_INSTALL_SBINDIR\}")
        self.assertRegex(read("clientlib/CMakeLists.txt"),
                         r"install\(TARGETS modelpoolctl RUNTIME DESTINATION \$\{CMAKE_INSTALL_BINDIR\}")
        copies = [w for w in run_words(self.final, "COPY") if w[0] == f"--from={self.build[1]}"]
        copied = {w[1]: w[2] for w in copies}
        daemon = f"{prefix.group(1)}/sbin/modelpoold"
        self.assertEqual(copied.get(daemon), daemon)
        self.assertIn(f"{prefix.group(1)}/bin/modelpoolctl", copied)
        self.assertEqual(entrypoint(self.final)[0], daemon)

    def test_build_context_holds_the_sources(self):
        top = read("CMakeLists.txt")
        needed = set(re.findall(r"^add_subdirectory\((\w+)\)", top, re.M)) - {"tests", "bench"}
        needed |= {"cmake", "CMakeLists.txt"}
        copied = {w[0].rstrip("/") for w in run_words(self.build, "COPY") if len(w) == 2}
        self.assertLessEqual(needed, copied, "the build stage copies every source folder")
        ignore = read(CONTAINERFILE + ".dockerignore").split()
        self.assertIn("*", ignore)
        for name in needed:
            self.assertTrue(f"!{name}" in ignore or f"!{name}/" in ignore, f"{name} is ignored")

    def test_entrypoint_paths(self):
        options = last_option_values(entrypoint(self.final))
        for name in ("models", "run-dir", "segment-dir", "group", "metrics-addr"):
            self.assertIn(name, options)
        self.assertEqual(options["group"], image_identity(self.final)["workers_group"])
        for name in ("models", "run-dir", "segment-dir"):
            self.assertTrue(posixpath.isabs(options[name]), f"--{name} must be absolute")

    def test_hadolint(self):
        hadolint = shutil.which("hadolint")
        if hadolint is None:
            self.skipTest("hadolint is not on PATH (neither Debian bookworm nor npm carries it)")
        result = subprocess.run([hadolint, os.path.join(ROOT, CONTAINERFILE)],
                                capture_output=True, text=True, check=False)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


# ---- the Kubernetes manifests --------------------------------------------------------------

def load_manifests():
    docs = {}
    folder = os.path.join(ROOT, K8S_DIR)
    for name in sorted(os.listdir(folder)):
        if name.endswith((".yaml", ".yml")):
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                docs[name] = [d for d in yaml.safe_load_all(f) if d is not None]
    return docs


def pod_volumes(spec):
    return {v["name"]: v for v in spec.get("volumes", [])}


def mounted_host_path(spec, container, mount_path):
    """(the mount, its volume) for the container's mount at mount_path."""
    mounts = [m for m in container.get("volumeMounts", []) if m["mountPath"] == mount_path]
    assert len(mounts) == 1, f"{container['name']} must mount {mount_path} once"
    return mounts[0], pod_volumes(spec)[mounts[0]["name"]]


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def groups_of(pod_security):
    return ({pod_security.get("runAsGroup"), pod_security.get("fsGroup")} |
            set(pod_security.get("supplementalGroups", []))) - {None}


class ManifestsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.files = load_manifests()
        cls.docs = [d for docs in cls.files.values() for d in docs]
        final = stages(parse_containerfile(read(CONTAINERFILE)))[-1]
        cls.ids = image_identity(final)
        cls.entrypoint = entrypoint(final)
        cls.broker_obj = cls.only("DaemonSet")
        cls.worker_obj = cls.only("Deployment")
        cls.broker_pod = cls.broker_obj["spec"]["template"]["spec"]
        cls.worker_pod = cls.worker_obj["spec"]["template"]["spec"]
        cls.broker = next(c for c in cls.broker_pod["containers"] if c["name"] == "modelpoold")
        argv = cls.broker.get("command", cls.entrypoint) + cls.broker.get("args", [])
        cls.options = last_option_values(argv)

    @classmethod
    def only(cls, kind):
        found = [d for d in cls.docs if d.get("kind") == kind]
        assert len(found) == 1, f"expected one {kind}, found {len(found)}"
        return found[0]

    def test_every_document_is_an_object_with_real_fields(self):
        self.assertTrue(self.docs)
        for doc in self.docs:
            self.assertIn("apiVersion", doc)
            self.assertIn("kind", doc)
            if doc["kind"] != "Kustomization":
                self.assertTrue(doc.get("metadata", {}).get("name"), f"{doc['kind']} needs a name")
            check_fields(doc)

    def test_kustomization_lists_every_file(self):
        kust = self.files.get("kustomization.yaml")
        self.assertTrue(kust, "broker/deploy/k8s/kustomization.yaml")
        listed = set(kust[0]["resources"])
        self.assertEqual(listed, set(self.files) - {"kustomization.yaml"})

    def test_one_namespace(self):
        ns = self.only("Namespace")["metadata"]["name"]
        for doc in self.docs:
            if doc["kind"] not in ("Namespace", "Kustomization"):
                self.assertEqual(doc["metadata"].get("namespace"), ns, doc["metadata"]["name"])

    def test_selectors_match_templates(self):
        for obj in (self.broker_obj, self.worker_obj):
            labels = obj["spec"]["template"]["metadata"]["labels"]
            for k, v in obj["spec"]["selector"]["matchLabels"].items():
                self.assertEqual(labels.get(k), v)
        self.assertEqual(self.worker_pod.get("nodeSelector"), self.broker_pod.get("nodeSelector"),
                         "workers go where brokers run")

    def test_broker_command_line_matches_mounts(self):
        for name in ("run-dir", "segment-dir", "models"):
            path = self.options.get(name)
            self.assertTrue(path and posixpath.isabs(path), f"--{name} absolute")
            mount, volume = mounted_host_path(self.broker_pod, self.broker, path)
            self.assertIn("hostPath", volume, f"--{name} is a hostPath (shared across pods)")
        mount, _ = mounted_host_path(self.broker_pod, self.broker, self.options["models"])
        self.assertTrue(mount.get("readOnly"), "the models are mounted read-only")
        _, seg = mounted_host_path(self.broker_pod, self.broker, self.options["segment-dir"])
        self.assertEqual(seg["hostPath"].get("type"), "Directory",
                         "the segment directory is the node's tmpfs: it must exist, never be created")
        self.assertEqual(self.options.get("group"), self.ids["workers_group"])
        if "manifest" in self.options:
            folder = posixpath.dirname(self.options["manifest"])
            mounts = [m["mountPath"] for m in self.broker["volumeMounts"]]
            self.assertIn(folder, mounts, "--manifest lies in a mounted folder")

    def test_worker_mounts_the_same_paths_from_the_same_host_paths(self):
        worker = self.worker_pod["containers"][0]
        for name in ("run-dir", "segment-dir"):
            path = self.options[name]
            _, b = mounted_host_path(self.broker_pod, self.broker, path)
            _, w = mounted_host_path(self.worker_pod, worker, path)
            self.assertIn("hostPath", w)
            self.assertEqual(w["hostPath"]["path"], b["hostPath"]["path"], f"--{name} host path")

    def test_worker_finds_and_accepts_the_broker(self):
        worker = self.worker_pod["containers"][0]
        env = env_of(worker)
        pool = self.options.get("name", "modelpool")
        socket = env.get("MODELPOOL_SOCKET")
        if socket is None:
            self.assertEqual(env.get("MODELPOOL_RUN_DIR"), self.options["run-dir"])
        else:
            self.assertEqual(socket, posixpath.join(self.options["run-dir"], pool + ".sock"))
        self.assertEqual(env.get("MODELPOOL_BROKER_UID"), str(self.ids["uid"]))

    def test_ids_line_up_with_the_image(self):
        broker_sc = self.broker_pod["securityContext"]
        self.assertEqual(broker_sc.get("runAsUser"), self.ids["uid"])
        self.assertEqual(broker_sc.get("runAsGroup"), self.ids["gid"])
        self.assertIn(self.ids["workers_gid"], groups_of(broker_sc),
                      "the broker must be in the workers' group to give it the socket")
        worker_sc = self.worker_pod["securityContext"]
        self.assertNotIn(worker_sc.get("runAsUser"), (None, 0))
        self.assertIn(self.ids["workers_gid"], groups_of(worker_sc),
                      "workers carry the broker's workers' group")
        for init in self.broker_pod.get("initContainers", []):
            script = " ".join(init.get("command", []) + init.get("args", []))
            for owner in re.findall(r"chown (\S+)", script):
                self.assertEqual(owner, f"{self.ids['uid']}:{self.ids['workers_gid']}")

    def test_containers_are_locked_down(self):
        for pod in (self.broker_pod, self.worker_pod):
            for c in pod["containers"] + pod.get("initContainers", []):
                sc = c.get("securityContext", {})
                self.assertIs(sc.get("readOnlyRootFilesystem"), True, c["name"])
                self.assertIs(sc.get("allowPrivilegeEscalation"), False, c["name"])
                self.assertEqual(sc.get("capabilities", {}).get("drop"), ["ALL"], c["name"])
                self.assertFalse(sc.get("privileged", False), c["name"])
            for c in pod["containers"]:
                sc = c.get("securityContext", {})
                self.assertFalse(sc.get("capabilities", {}).get("add"), c["name"])
                non_root = sc.get("runAsNonRoot", pod["securityContext"].get("runAsNonRoot"))
                self.assertIs(non_root, True, c["name"])
                self.assertIn("limits", c.get("resources", {}), c["name"])
            for c in pod.get("initContainers", []):
                added = set(c.get("securityContext", {}).get("capabilities", {}).get("add", []))
                self.assertLessEqual(added, {"CHOWN", "FOWNER"}, c["name"])

    def test_probes_on_the_metrics_port(self):
        addr = self.options.get("metrics-addr", "")
        self.assertRegex(addr, r"^0\.0\.0\.0:\d+$", "the kubelet probes the pod's address")
        port = int(addr.rsplit(":", 1)[1])
        ports = {p.get("name"): p["containerPort"] for p in self.broker.get("ports", [])}
        self.assertEqual(ports.get("metrics"), port)
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = self.broker.get(probe, {}).get("httpGet", {})
            self.assertEqual(get.get("path"), path, probe)
            self.assertIn(get.get("port"), ("metrics", port), probe)
        startup = self.broker.get("startupProbe", {}).get("httpGet")
        if startup is not None:
            self.assertIn(startup.get("port"), ("metrics", port))

    def test_broker_memory_limit_holds_the_budget(self):
        budget = quantity_bytes(self.options["memory"])
        limits = self.broker["resources"]["limits"]
        self.assertGreater(quantity_bytes(limits["memory"]), budget,
                           "the pool's pages are charged to the broker's pod")

    def test_configmap_manifest_parses(self):
        cm = self.only("ConfigMap")
        for key, text in cm["data"].items():
            if key.endswith(".json"):
                self.assertIn("models", json.loads(text))


if __name__ == "__main__":
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        ROOT = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
