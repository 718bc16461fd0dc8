"""File: tests/deploy/k8s_fields.py

The Kubernetes field names the example manifests may use, taken from the API
reference (core/v1 and apps/v1), so that a misspelt field (`readonly`,
`runAsUid`), which the API server would drop or refuse, fails the test instead.
Not a schema: only the objects the examples use are known, each with the
fields the API defines for it; an object of another kind is not checked.
Also parses memory quantities, Kubernetes' (17Gi) and modelpoold's (16GiB).
"""

import re

OBJECT_META = {"name", "namespace", "labels", "annotations", "generateName"}
POD_SPEC = {
    "activeDeadlineSeconds", "affinity", "automountServiceAccountToken", "containers",
    "dnsConfig", "dnsPolicy", "enableServiceLinks", "ephemeralContainers", "hostAliases",
    "hostIPC", "hostNetwork", "hostPID", "hostUsers", "hostname", "imagePullSecrets",
    "initContainers", "nodeName", "nodeSelector", "os", "overhead", "preemptionPolicy",
    "priority", "priorityClassName", "readinessGates", "resourceClaims", "resources",
    "restartPolicy", "runtimeClassName", "schedulerName", "schedulingGates", "securityContext",
    "serviceAccount", "serviceAccountName", "setHostnameAsFQDN", "shareProcessNamespace",
    "subdomain", "terminationGracePeriodSeconds", "tolerations", "topologySpreadConstraints",
    "volumes",
}
POD_SECURITY = {
    "appArmorProfile", "fsGroup", "fsGroupChangePolicy", "runAsGroup", "runAsNonRoot",
    "runAsUser", "seLinuxChangePolicy", "seLinuxOptions", "seccompProfile", "supplementalGroups",
    "supplementalGroupsPolicy", "sysctls", "windowsOptions",
}
CONTAINER = {
    "args", "command", "env", "envFrom", "image", "imagePullPolicy", "lifecycle", "livenessProbe",
    "name", "ports", "readinessProbe", "resizePolicy", "resources", "restartPolicy",
    "securityContext", "startupProbe", "stdin", "stdinOnce", "terminationMessagePath",
    "terminationMessagePolicy", "tty", "volumeDevices", "volumeMounts", "workingDir",
}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation", "appArmorProfile", "capabilities", "privileged", "procMount",
    "readOnlyRootFilesystem", "runAsGroup", "runAsNonRoot", "runAsUser", "seLinuxOptions",
    "seccompProfile", "windowsOptions",
}
PROBE = {
    "exec", "failureThreshold", "grpc", "httpGet", "initialDelaySeconds", "periodSeconds",
    "successThreshold", "tcpSocket", "terminationGracePeriodSeconds", "timeoutSeconds",
}
HTTP_GET = {"host", "httpHeaders", "path", "port", "scheme"}
VOLUME_SOURCES = {
    "hostPath", "emptyDir", "configMap", "secret", "persistentVolumeClaim", "projected",
    "downwardAPI", "csi", "ephemeral", "image", "nfs",
}
VOLUME_MOUNT = {"mountPath", "mountPropagation", "name", "readOnly", "recursiveReadOnly",
                "subPath", "subPathExpr"}
HOST_PATH = {"path", "type"}
HOST_PATH_TYPES = {"", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket",
                   "CharDevice", "BlockDevice"}
CONTAINER_PORT = {"containerPort", "hostIP", "hostPort", "name", "protocol"}
ENV_VAR = {"name", "value", "valueFrom"}
RESOURCES = {"claims", "limits", "requests"}
CAPABILITIES = {"add", "drop"}
SECCOMP = {"localhostProfile", "type"}
DAEMONSET_SPEC = {"minReadySeconds", "revisionHistoryLimit", "selector", "template",
                  "updateStrategy"}
DAEMONSET_UPDATE = {"type", "rollingUpdate"}
DAEMONSET_ROLLING = {"maxSurge", "maxUnavailable"}
DEPLOYMENT_SPEC = {"minReadySeconds", "paused", "progressDeadlineSeconds", "replicas",
                   "revisionHistoryLimit", "selector", "strategy", "template"}
TOP_LEVEL = {
    ("v1", "Namespace"): {"apiVersion", "kind", "metadata", "spec"},
    ("v1", "ConfigMap"): {"apiVersion", "kind", "metadata", "data", "binaryData", "immutable"},
    ("apps/v1", "DaemonSet"): {"apiVersion", "kind", "metadata", "spec"},
    ("apps/v1", "Deployment"): {"apiVersion", "kind", "metadata", "spec"},
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"): None,  # kustomize's own schema
}


def _only(obj, allowed, where):
    assert isinstance(obj, dict), f"{where} must be a mapping"
    unknown = set(obj) - allowed
    assert not unknown, f"{where}: unknown field(s) {sorted(unknown)}"


def _check_container(c, where):
    _only(c, CONTAINER, where)
    if "securityContext" in c:
        sc = c["securityContext"]
        _only(sc, CONTAINER_SECURITY, where + ".securityContext")
        if "capabilities" in sc:
            _only(sc["capabilities"], CAPABILITIES, where + ".securityContext.capabilities")
        if "seccompProfile" in sc:
            _only(sc["seccompProfile"], SECCOMP, where + ".securityContext.seccompProfile")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if probe in c:
            _only(c[probe], PROBE, f"{where}.{probe}")
            if "httpGet" in c[probe]:
                _only(c[probe]["httpGet"], HTTP_GET, f"{where}.{probe}.httpGet")
    for m in c.get("volumeMounts", []):
        _only(m, VOLUME_MOUNT, where + ".volumeMounts[]")
    for p in c.get("ports", []):
        _only(p, CONTAINER_PORT, where + ".ports[]")
    for e in c.get("env", []):
        _only(e, ENV_VAR, where + ".env[]")
    if "resources" in c:
        _only(c["resources"], RESOURCES, where + ".resources")


def _check_pod_spec(spec, where):
    _only(spec, POD_SPEC, where)
    if "securityContext" in spec:
        _only(spec["securityContext"], POD_SECURITY, where + ".securityContext")
        if "seccompProfile" in spec["securityContext"]:
            _only(spec["securityContext"]["seccompProfile"], SECCOMP,
                  where + ".securityContext.seccompProfile")
    for kind in ("initContainers", "containers"):
        for c in spec.get(kind, []):
            _check_container(c, f"{where}.{kind}[{c.get('name')}]")
    for v in spec.get("volumes", []):
        name = f"{where}.volumes[{v.get('name')}]"
        sources = set(v) - {"name"}
        assert len(sources) == 1 and sources <= VOLUME_SOURCES, f"{name}: one known source"
        if "hostPath" in v:
            _only(v["hostPath"], HOST_PATH, name + ".hostPath")
            assert v["hostPath"].get("type", "") in HOST_PATH_TYPES, name + ".hostPath.type"


def check_fields(doc):
    """Raises AssertionError naming the first field the API does not define."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    assert key in TOP_LEVEL, f"unknown apiVersion/kind {key}"
    allowed = TOP_LEVEL[key]
    if allowed is None:
        return
    name = f"{doc['kind']}/{doc.get('metadata', {}).get('name')}"
    _only(doc, allowed, name)
    _only(doc["metadata"], OBJECT_META, name + ".metadata")
    spec = doc.get("spec")
    if doc["kind"] == "DaemonSet":
        _only(spec, DAEMONSET_SPEC, name + ".spec")
        if "updateStrategy" in spec:
            _only(spec["updateStrategy"], DAEMONSET_UPDATE, name + ".spec.updateStrategy")
            _only(spec["updateStrategy"].get("rollingUpdate", {}), DAEMONSET_ROLLING,
                  name + ".spec.updateStrategy.rollingUpdate")
    elif doc["kind"] == "Deployment":
        _only(spec, DEPLOYMENT_SPEC, name + ".spec")
    if doc["kind"] in ("DaemonSet", "Deployment"):
        _only(spec["template"], {"metadata", "spec"}, name + ".spec.template")
        _check_pod_spec(spec["template"]["spec"], name + ".spec.template.spec")


_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
          "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def quantity_bytes(text):
    """'17Gi' (Kubernetes) or '16GiB' (modelpoold --memory) in bytes."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kMGT]?i?B?)", str(text))
    assert m and m.group(2) in _UNITS, f"not a memory quantity: {text!r}"
    return int(float(m.group(1)) * _UNITS[m.group(2)])
