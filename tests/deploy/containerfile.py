"""File: tests/deploy/containerfile.py

A small reader of the Dockerfile syntax, enough for the checks in
manifests_test.py: the instructions in order (continuations joined, comments
dropped, `# hadolint ignore=` pragmas kept), the stages, the packages each
stage installs with apt-get, the user and groups the image creates, and the
ENTRYPOINT; and modelpoold's command line as the broker reads it (an option
given twice: the later one wins).
"""

import json
import re
import shlex


def parse_containerfile(text):
    """Instructions as (KEYWORD, arguments, hadolint-ignores) in order; continuations joined."""
    out, pending, ignores = [], "", []
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and stripped.startswith("#"):
            m = re.match(r"#\s*hadolint\s+ignore=(\S+)", stripped)
            if m:
                ignores = m.group(1).split(",")
            continue
        if pending and (stripped.startswith("#") or not stripped):
            continue  # comments and blank lines inside a continued instruction
        if not pending and not stripped:
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, rest = full.partition(" ")
        out.append((keyword.upper(), rest.strip(), ignores))
        ignores = []
    if pending:
        raise AssertionError("Containerfile ends inside a continued instruction")
    return out


def stages(instructions):
    """[(image, name, [instructions])] per FROM."""
    result = []
    for keyword, rest, ignores in instructions:
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            result.append((words[0], name, []))
        elif keyword not in ("ARG",) or result:
            if not result:
                raise AssertionError(f"{keyword} before the first FROM")
            result[-1][2].append((keyword, rest, ignores))
    return result


def run_words(stage, keyword="RUN"):
    return [shlex.split(rest) for k, rest, _ in stage[2] if k == keyword]


def apt_packages(stage):
    """Packages named by `apt-get install` in the stage's RUN instructions."""
    packages = []
    for words in run_words(stage):
        for i, w in enumerate(words):
            if w == "install" and i > 0 and words[i - 1] == "apt-get":
                for p in words[i + 1:]:
                    if p in ("&&", ";", "|"):
                        break
                    if not p.startswith("-"):
                        packages.append(p)
    return packages


def option_values(words, option):
    return [words[i + 1] for i, w in enumerate(words[:-1]) if w == option]


def image_identity(final_stage):
    """uid, gid, user name, workers' group name and gid as the image creates them."""
    groups, user = {}, None
    for words in run_words(final_stage):
        for i, w in enumerate(words):
            if w == "groupadd":
                gid = int(option_values(words[i:], "--gid")[0])
                name = next(x for x in words[i + 1:] if not x.startswith("-") and not x.isdigit())
                groups[name] = gid
            if w == "useradd":
                seg = words[i:words.index("&&", i) if "&&" in words[i:] else len(words)]
                user = {"name": seg[-1], "uid": int(option_values(seg, "--uid")[0]),
                        "group": option_values(seg, "--gid")[0],
                        "groups": option_values(seg, "--groups")[0].split(",")}
    assert user is not None, "the runtime stage creates no user (useradd)"
    assert len(user["groups"]) == 1, "expected one supplementary group, the workers' group"
    workers = user["groups"][0]
    return {"uid": user["uid"], "gid": groups[user["group"]], "user": user["name"],
            "workers_group": workers, "workers_gid": groups[workers]}


def entrypoint(final_stage):
    ep = [rest for k, rest, _ in final_stage[2] if k == "ENTRYPOINT"]
    assert ep, "the runtime stage has no ENTRYPOINT"
    argv = json.loads(ep[-1])
    assert isinstance(argv, list) and argv, "ENTRYPOINT must be the exec (JSON array) form"
    return argv


def last_option_values(argv):
    """--name VALUE / --name=VALUE pairs of modelpoold's command line, the later one winning."""
    values, i = {}, 1
    while i < len(argv):
        arg = argv[i]
        assert arg.startswith("--"), f"unexpected argument {arg!r}"
        if "=" in arg:
            name, value = arg[2:].split("=", 1)
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            name, value = arg[2:], argv[i + 1]
            i += 1
        else:
            name, value = arg[2:], True
        values[name] = value
        i += 1
    return values
