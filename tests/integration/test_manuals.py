#!/usr/bin/env python3
"""What `meson install` puts where people look: man pages, bash completion,
the systemd drop-in. argv[1]:

  pages       every page the build made renders with `man -l` and every
              groff warning on, without one; the pages are leakwatch(1),
              one leakwatch-VERB(1) per verb that `leakwatch help` lists
              (no more, no fewer) and libleakwatch(7); each verb's page says
              what `leakwatch VERB --help` says: its synopsis, every option
              with its help, every paragraph of its description, exit status
              and examples, word for word (whitespace aside).
  install     `meson install --destdir` into a temporary root: `man -M` finds
              leakwatch, leakwatch-threads and libleakwatch there; the
              completion, leakwatch.h, leakwatch_gtest.h, leakwatch.pc, the
              alert rules and the examples are installed; the installed
              libleakwatch(7) names the installed preload.
  completion  the installed script, sourced into bash, completes verbs,
              each verb's options, files after --pprof, commands after
              `run --`, and after `threads` the pid of a process under the
              preload (a fixture) but not of one without it (a sleep).
  dropin      the installed systemd drop-in passes `systemd-analyze verify`
              on a service, without a warning."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
from lwtest import CLI, Process, check, fixture, private_dir, run_test

BUILD = os.path.dirname(os.path.dirname(os.path.abspath(CLI)))
MAN_DIR = os.path.join(BUILD, "docs", "man")


def render(path, manpath=None, name=None):
    """(text, warnings) of a page rendered by man(1), every warning on."""
    env = dict(os.environ, MANWIDTH="100", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="0")
    argv = ["man", "--warnings=w"] + (["-M", manpath, name] if manpath else ["-l", path])
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    check(r.returncode == 0, "man %s: exit %d: %s" % (" ".join(argv[2:]), r.returncode, r.stderr))
    text = re.sub(r".\x08", "", r.stdout)   # no overstrike
    return text, r.stderr


def words(text):
    return " ".join(text.replace("\u2010", "-").replace("\u2212", "-").split())


def verbs():
    out = subprocess.run([CLI, "help"], capture_output=True, text=True, check=True).stdout
    return re.findall(r"^  (\w+)\s", out.split("verbs:", 1)[1].split("\n\n", 1)[0], re.M)


def help_sections(verb):
    """The sections of `leakwatch VERB --help`: {heading: text}."""
    out = subprocess.run([CLI, verb, "--help"], capture_output=True, text=True, check=True).stdout
    head, rest = out.split("\n\n", 1)
    usage, rest = rest.split("\n\n", 1)
    description, rest = rest.split("\noptions:\n", 1)
    sections = {"usage": usage[len("usage: "):], "description": description}
    for part in re.split(r"\n(?=[a-z ]+:\n)", "options:\n" + rest):
        name, _, body = part.partition(":\n")
        sections[name] = body
    return sections


def test_pages():
    made = sorted(f for f in os.listdir(MAN_DIR) if re.match(r".*\.[17]$", f))
    wanted = sorted(["leakwatch.1", "libleakwatch.7"] + ["leakwatch-%s.1" % v for v in verbs()])
    check(made == wanted, "pages made %r, the verb table wants %r" % (made, wanted))
    for page in made:
        text, warnings = render(os.path.join(MAN_DIR, page))
        check(not warnings.strip(), "%s: warnings: %s" % (page, warnings))
        check(len(text.splitlines()) > 20, "%s renders to almost nothing: %r" % (page, text))
    for verb in verbs():
        page, _ = render(os.path.join(MAN_DIR, "leakwatch-%s.1" % verb))
        said = words(page)
        h = help_sections(verb)
        for name in ("usage", "exit status", "examples"):
            for line in h[name].splitlines():
                check(words(line) in said, "leakwatch-%s(1) lacks its %s line %r" % (verb, name, line.strip()))
        for para in h["description"].split("\n\n"):
            check(words(para) in said, "leakwatch-%s(1) lacks the paragraph %r" % (verb, para[:200]))
        for opt in re.findall(r"^  (--[\w-]+)", h["options"], re.M):
            check(re.search(r"^\s+%s\b" % re.escape(opt), page, re.M), "leakwatch-%s(1) lacks %s" % (verb, opt))
        for helptext in re.findall(r"^  --[\w-]+(?: [A-Z:]+)?\s+(.*)$", h["options"], re.M):
            check(words(helptext) in said, "leakwatch-%s(1) lacks the option help %r" % (verb, helptext))
    overview, _ = render(os.path.join(MAN_DIR, "leakwatch.1"))
    for verb in verbs():
        check("leakwatch-%s(1)" % verb in overview, "leakwatch(1) does not list leakwatch-%s(1)" % verb)


def install_root():
    root = tempfile.mkdtemp(prefix="lwinstall.")
    r = subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild", "--quiet", "--destdir", root],
                       capture_output=True, text=True, timeout=300)
    check(r.returncode == 0, "meson install: %s%s" % (r.stdout, r.stderr))
    prefix = subprocess.run(["meson", "introspect", BUILD, "--buildoptions"], capture_output=True, text=True,
                            check=True).stdout
    p = re.search(r'"name": "prefix", "value": "([^"]+)"', prefix)
    check(p, "no prefix in meson introspect")
    return root, root + p.group(1)


def test_install():
    root, prefix = install_root()
    try:
        manpath = os.path.join(prefix, "share", "man")
        for name, needle in (("leakwatch", "leakwatch-threads(1)"), ("leakwatch-threads", "--pprof"),
                             ("libleakwatch", "LEAKWATCH_LOG")):
            text, warnings = render(None, manpath, name)
            check(needle in text and not warnings.strip(), "man %s: %r %s" % (name, text[:300], warnings))
        libleakwatch, _ = render(None, manpath, "libleakwatch")
        preload = subprocess.run(["find", prefix, "-name", "libleakwatch.so"], capture_output=True,
                                 text=True).stdout.split()
        check(len(preload) == 1 and preload[0][len(root):] in words(libleakwatch),
              "libleakwatch(7) does not name the installed preload %r" % preload)
        for rel in ("share/bash-completion/completions/leakwatch", "include/leakwatch.h", "include/leakwatch_gtest.h",
                    "share/doc/leakwatch/leakwatch-alerts.yml", "share/doc/leakwatch/examples/verify_none.c",
                    "share/doc/leakwatch/examples/leakwatch.conf", "bin/leakwatch"):
            check(os.path.exists(os.path.join(prefix, rel)), "%s is not installed" % rel)
        pcs = subprocess.run(["find", prefix, "-name", "leakwatch.pc"], capture_output=True, text=True).stdout.split()
        check(len(pcs) == 1, "leakwatch.pc: %r" % pcs)
        with open(pcs[0]) as f:
            pc = f.read()
        check("preload=${libdir}/libleakwatch.so" in pc and "Cflags: -I${includedir}" in pc, pc)
    finally:
        shutil.rmtree(root, ignore_errors=True)


COMPLETE = r"""
source "$1"; shift
COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_leakwatch
printf '%s\n' "${COMPREPLY[@]}"
"""


def complete(script, *line):
    r = subprocess.run(["bash", "-c", COMPLETE, "complete", script] + list(line), capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 0 and not r.stderr, "completing %r: %s" % (line, r.stderr))
    return r.stdout.split()


def test_completion():
    root, prefix = install_root()
    tmp, lwdir = private_dir()
    try:
        script = os.path.join(prefix, "share", "bash-completion", "completions", "leakwatch")
        check(sorted(complete(script, "leakwatch", "")) == sorted(verbs()), "verbs: %r" % complete(script, "leakwatch", ""))
        check(complete(script, "leakwatch", "ex") == ["exporter"], "ex: %r" % complete(script, "leakwatch", "ex"))
        opts = complete(script, "leakwatch", "threads", "--")
        check(sorted(opts) == sorted(["--all", "--json", "--pprof", "--ignore", "--suppressions", "--help"]),
              "threads options: %r" % opts)
        check(complete(script, "leakwatch", "exporter", "--l") == ["--listen"], "exporter --l")
        with open(os.path.join(tmp, "prof.pb.gz"), "w"):
            pass
        check(complete(script, "leakwatch", "threads", "1", "--pprof", os.path.join(tmp, "pro")) ==
              [os.path.join(tmp, "prof.pb.gz")], "a file after --pprof")
        check(complete(script, "leakwatch", "exporter", "--budget", "") == [], "nothing after --budget")
        check("echo" in complete(script, "leakwatch", "run", "--check", "--", "ech"), "a command after run --")
        check(complete(script, "leakwatch", "help", "thr") == ["threads"], "help VERB")
        bare = subprocess.Popen(["sleep", "60"])
        try:
            with Process([fixture("park"), "sem", "1"]) as p:
                p.read_line("READY")
                p.wait_socket()
                pids = complete(script, "leakwatch", "threads", "")
                check(str(p.pid) in pids, "the preloaded fixture %d is not offered: %r" % (p.pid, pids))
                check(str(bare.pid) not in pids, "a process without the preload is offered: %r" % pids)
                check(str(p.pid) in complete(script, "leakwatch", "status", str(p.pid)[:-1]), "a pid prefix")
                check(complete(script, "leakwatch", "run", "") != pids or not pids, "run takes no pid")
        finally:
            bare.kill()
            bare.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


def test_dropin():
    with tempfile.TemporaryDirectory() as units:
        os.makedirs(os.path.join(units, "demo.service.d"))
        with open(os.path.join(units, "demo.service"), "w") as f:
            f.write("[Unit]\nDescription=a service run under leakwatch\n[Service]\nExecStart=/bin/sleep 60\n")
        shutil.copy(os.path.join(BUILD, "docs", "leakwatch.conf"), os.path.join(units, "demo.service.d"))
        r = subprocess.run(["systemd-analyze", "verify", os.path.join(units, "demo.service")], capture_output=True,
                           text=True, timeout=60, env=dict(os.environ, SYSTEMD_UNIT_PATH=units + ":"))
        check(r.returncode == 0 and not r.stderr.strip(), "systemd-analyze verify: exit %d: %s%s"
              % (r.returncode, r.stdout, r.stderr))
        with open(os.path.join(units, "demo.service.d", "leakwatch.conf")) as f:
            conf = f.read()
        for line in ("Environment=LEAKWATCH_DIR=/run/leakwatch-%N", "RuntimeDirectory=leakwatch-%N",
                     "RuntimeDirectoryMode=0700", "Environment=LEAKWATCH_LOG=journal"):
            check(re.search(r"^%s$" % re.escape(line), conf, re.M), "the drop-in lacks %r" % line)
        check(re.search(r"^Environment=LD_PRELOAD=/\S+/libleakwatch\.so$", conf, re.M), "no LD_PRELOAD: %s" % conf)


if __name__ == "__main__":
    run_test({"pages": test_pages, "install": test_install, "completion": test_completion,
              "dropin": test_dropin}[sys.argv[1]])
