"""The modelpool package's build backend (PEP 517), in the tree so that
``pip install --no-index`` needs nothing from an index: standard library
only, and ``requires = []`` in pyproject.toml.

Two roles:

* ``build_wheel`` (pip): builds the binding with CMake for the interpreter
  that runs this backend (pip runs it with the target interpreter, even with
  build isolation), then returns the wheel that build makes. It configures a
  fresh build tree in a temporary directory, or reuses the CMake build tree
  given by ``--config-settings build-dir=DIR`` (or ``$MODELPOOL_BUILD_DIR``)
  when that tree builds for an interpreter of the same ABI.
* ``python3 modelpool_build.py pack ...`` (the CMake target modelpool_wheel):
  writes the wheel from an extension already built for the running
  interpreter, the client library it links, and the package's .py files.

The wheel holds modelpool/ (the .py files, _modelpool.*.so, and
libmodelpool_client.so.X.Y, which the extension finds through its
RPATH $ORIGIN) and modelpool-VERSION.dist-info. numpy and torch are extras,
not requirements: the bytes API works without them, and an offline install
must not need them.
"""

import argparse
import base64
import hashlib
import importlib.machinery
import os
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile

NAME = "modelpool"
SUMMARY = "Zero-copy, read-only views of models held by a modelpool broker"
# clientlib/python/build_backend/modelpool_build.py -> the repository root
ROOT = pathlib.Path(__file__).resolve().parents[3]
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, so that a rebuild gives the same bytes


def wheel_tag():
    """cp311-cp311-linux_x86_64 for the running CPython."""
    if sys.implementation.name != "cpython":
        raise RuntimeError("the modelpool binding is built for CPython, "
                           f"not {sys.implementation.name}")
    py = f"cp{sys.version_info.major}{sys.version_info.minor}"
    abi = py + getattr(sys, "abiflags", "")
    platform = re.sub(r"[-.]", "_", sysconfig.get_platform())
    return f"{py}-{abi}-{platform}"


def project_version():
    text = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    m = re.search(r"project\(\s*modelpool\s+VERSION\s+([0-9.]+)", text)
    if not m:
        raise RuntimeError(f"no project version in {ROOT / 'CMakeLists.txt'}")
    return m.group(1)


def wheel_name(version):
    return f"{NAME}-{version}-{wheel_tag()}.whl"


def _record_hash(data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def pack(extension, library, package_dir, version, out_dir):
    """Writes out_dir/<wheel_name(version)>; returns its path."""
    extension, library = pathlib.Path(extension), pathlib.Path(library)
    suffix = extension.name[len("_modelpool"):]
    if suffix not in importlib.machinery.EXTENSION_SUFFIXES:
        raise RuntimeError(f"{extension.name} is not an extension of this interpreter "
                           f"({sys.executable}: {importlib.machinery.EXTENSION_SUFFIXES})")
    files = {}  # path in the wheel -> (bytes, executable)
    for py in sorted(pathlib.Path(package_dir).glob("*.py")):
        files[f"{NAME}/{py.name}"] = (py.read_bytes(), False)
    files[f"{NAME}/{extension.name}"] = (extension.read_bytes(), True)
    files[f"{NAME}/{library.name}"] = (library.read_bytes(), True)

    info = f"{NAME}-{version}.dist-info"
    metadata = "\n".join([
        "Metadata-Version: 2.1", f"Name: {NAME}", f"Version: {version}", f"Summary: {SUMMARY}",
        f"Requires-Python: =={sys.version_info.major}.{sys.version_info.minor}.*",
        "Provides-Extra: numpy", 'Requires-Dist: numpy; extra == "numpy"',
        "Provides-Extra: torch", 'Requires-Dist: numpy; extra == "torch"',
        'Requires-Dist: torch; extra == "torch"', "", ""])
    wheel = "\n".join(["Wheel-Version: 1.0", "Generator: modelpool_build", "Root-Is-Purelib: false",
                       f"Tag: {wheel_tag()}", "", ""])
    files[f"{info}/METADATA"] = (metadata.encode(), False)
    files[f"{info}/WHEEL"] = (wheel.encode(), False)
    files[f"{info}/top_level.txt"] = (f"{NAME}\n".encode(), False)
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n"
                     for path, (data, _) in files.items())
    files[f"{info}/RECORD"] = ((record + f"{info}/RECORD,,\n").encode(), False)

    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / wheel_name(version)
    partial = target.with_name(target.name + ".part")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as z:
        for path, (data, executable) in files.items():
            entry = zipfile.ZipInfo(path, ZIP_TIME)
            entry.external_attr = (0o755 if executable else 0o644) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(entry, data)
    os.replace(partial, target)
    return target


# ---- PEP 517 hooks -----------------------------------------------------------------------------

def get_requires_for_build_wheel(config_settings=None):
    return []


def _run(argv):
    # pip shows a backend's output only with -v, or when the build fails.
    print("modelpool_build:", " ".join(str(a) for a in argv), file=sys.stderr, flush=True)
    subprocess.run([str(a) for a in argv], check=True, stdout=sys.stderr)


def _configure(build_dir):
    if shutil.which("cmake") is None:
        raise RuntimeError("building the modelpool binding needs cmake (Debian: cmake), "
                           "or install the wheel a build made (docs/python.md)")
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    _run(["cmake", "-S", ROOT, "-B", build_dir, *generator, "-DCMAKE_BUILD_TYPE=Release",
          f"-DPython_EXECUTABLE={sys.executable}", "-DMODELPOOL_BUILD_PYTHON=ON",
          "-DMODELPOOL_BUILD_TESTS=OFF", "-DMODELPOOL_BUILD_BENCH=OFF"])


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    if not (ROOT / "shm").is_dir() or not (ROOT / "clientlib" / "python").is_dir():
        raise RuntimeError(f"{ROOT} is not a modelpool source tree: build from the repository's "
                           "clientlib/python (pip 21.3 or later builds in place)")
    settings = config_settings or {}
    reuse = settings.get("build-dir") or os.environ.get("MODELPOOL_BUILD_DIR")
    version = project_version()
    scratch = None
    try:
        if reuse:
            build_dir = pathlib.Path(reuse).resolve()
            if not (build_dir / "CMakeCache.txt").is_file():
                raise RuntimeError(f"build-dir {build_dir} is not a CMake build tree of modelpool")
        else:
            scratch = tempfile.mkdtemp(prefix="modelpool-wheel-")
            build_dir = pathlib.Path(scratch)
            _configure(build_dir)
        _run(["cmake", "--build", build_dir, "--target", "modelpool_wheel"])
        built = build_dir / "clientlib" / "python" / "dist" / wheel_name(version)
        if not built.is_file():
            found = sorted(p.name for p in built.parent.glob("*.whl"))
            raise RuntimeError(f"{build_dir} builds no {built.name} for {sys.executable} "
                               f"(it has: {', '.join(found) or 'none'}); configure it with "
                               f"-DPython_EXECUTABLE={sys.executable}, or leave out build-dir")
        shutil.copy2(built, pathlib.Path(wheel_directory) / built.name)
        return built.name
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


# ---- the CMake target's command line ---------------------------------------------------------

def main(argv):
    parser = argparse.ArgumentParser(description="write the modelpool wheel")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="pack an extension built for this interpreter")
    p.add_argument("--extension", required=True)
    p.add_argument("--library", required=True, help="the client library, named as its soname")
    p.add_argument("--package-dir", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--out-dir", required=True)
    sub.add_parser("name", help="print the wheel's file name for this interpreter")
    args = parser.parse_args(argv)
    if args.command == "name":
        print(wheel_name(project_version()))
        return 0
    print(pack(args.extension, args.library, args.package_dir, args.version, args.out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
