"""What an argv really runs: see through wrappers to a shell or an interpreter given code.

A runbook's `argv` is run without a shell, so a param can only ever fill one argument.
That promise is void when the program is a shell (`bash -lc "…{{ x }}"`), or an
interpreter handed code on its command line (`python3 -c`, `perl -e`, `awk '{…}'`), or
when either hides behind a wrapper that runs the rest of its argv (`env`, `sudo`,
`timeout 5`, `find … -exec`, `xargs`, `busybox`) or a command string (`ssh host cmd`,
`su -c`, `watch`). `find_interpreter` unwraps those and names what it found, with the
argv positions whose text becomes code, so the validator can refuse the step or, for a
reviewed exception, check that no param reaches that code.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass

_VERSIONED = re.compile(r"^(?P<name>[a-z]+?)(?:[-_]?[0-9][0-9.]*)?(?:\.exe)?$")

# Programs whose whole job is to interpret commands: any use of them runs shell code.
SHELLS = frozenset(
    [
        "sh",
        "bash",
        "dash",
        "zsh",
        "ksh",
        "mksh",
        "pdksh",
        "oksh",
        "loksh",
        "ash",
        "yash",
        "posh",
        "rbash",
        "csh",
        "tcsh",
        "fish",
        "elvish",
        "nu",
        "xonsh",
        "rc",
        "es",
        "ion",
        "pwsh",
        "powershell",
        "cmd",
        "tclsh",
        "wish",
        "jimsh",
    ]
)
# Wrappers that always hand their command to a shell as one string.
SHELL_STRING = frozenset(["su", "sg", "script", "parallel", "at", "batch", "tmux", "byobu"])


@dataclass(frozen=True)
class Interpreter:
    """A shell or interpreter an argv reaches, and where its code comes from."""

    what: str  # e.g. "bash -lc", "python3 -c", "ssh remote command"
    index: int  # argv position of the program (or wrapper) found
    code: tuple[int, ...]  # argv positions whose text is, or reaches, code
    shell: bool  # a shell (rather than an interpreter given code)


def program_name(arg: str) -> str:
    """`/usr/bin/python3.11` → `python3.11`."""
    return arg.rstrip("/").rsplit("/", 1)[-1]


def _family(arg: str) -> str:
    """`/usr/bin/python3.11` → `python`, `gawk` stays `gawk`, `bash5.2` → `bash`."""
    name = program_name(arg).lower()
    match = _VERSIONED.match(name)
    return match.group("name") if match else name


def _tail(start: int, argv: list[str]) -> tuple[int, ...]:
    return tuple(range(start, len(argv)))


# --- interpreters given code ----------------------------------------------------------
@dataclass(frozen=True)
class _Flags:
    """How an interpreter takes code: short letters (clusterable), long options."""

    letters: str = ""  # e.g. "e" for perl: -e, -ne, -lne
    long: tuple[str, ...] = ()  # e.g. ("--eval", "--print")
    valued: str = ""  # short letters that take a value (skip it)
    file_ends: bool = True  # the first plain argument is a script file: stop there


_INTERPRETERS: dict[str, _Flags] = {
    "python": _Flags("c", valued="WXm"),
    "pypy": _Flags("c", valued="WXm"),
    "perl": _Flags("eE", valued="IMmx"),
    "ruby": _Flags("e", valued="rIEC"),
    "irb": _Flags("e"),
    "node": _Flags("ep", ("--eval", "--print"), valued="r"),
    "nodejs": _Flags("ep", ("--eval", "--print"), valued="r"),
    "bun": _Flags("ep", ("--eval", "--print")),
    "deno": _Flags("", ("eval",)),
    "php": _Flags("rRBE", valued="cdzf"),
    "lua": _Flags("e", valued="l"),
    "luajit": _Flags("e", valued="lj"),
    "osascript": _Flags("e", valued="l"),
    "rscript": _Flags("e"),
    "r": _Flags("e"),
    "julia": _Flags("eE", ("--eval", "--print")),
    "expect": _Flags("c", valued="f"),
    "gdb": _Flags("", ("-ex", "--ex", "-eval-command", "--eval-command", "-iex")),
    "vim": _Flags("c", valued="S"),
    "vi": _Flags("c", valued="S"),
    "nvim": _Flags("c", valued="S"),
    "ex": _Flags("c", valued="S"),
    "make": _Flags("", ("--eval",), valued="fCI", file_ends=False),
}
_PYTHON_CODE_MODULES = frozenset(
    ["timeit", "cProfile", "profile", "trace", "pdb", "code", "runpy", "doctest"]
)


def _interpreter_code(name: str, argv: list[str], i: int) -> Interpreter | None:
    """`argv[i]` is interpreter `name`: the positions of code on its command line."""
    flags = _INTERPRETERS[name]
    shown = program_name(argv[i])
    j = i + 1
    while j < len(argv):
        arg = argv[j]
        if arg.startswith("+") and name in ("vim", "vi", "nvim", "ex"):
            return Interpreter(f"{shown} +cmd", i, (j,), False)
        if name == "deno" and arg == "eval":
            return Interpreter(f"{shown} eval", i, _tail(j + 1, argv), False)
        if arg == "--" or (flags.file_ends and not arg.startswith("-")):
            return None  # a script file (or the end of options): no code here
        key = arg.split("=", 1)[0]
        if key in flags.long:
            code = (j,) if "=" in arg else (j, j + 1)
            return Interpreter(f"{shown} {key}", i, code, False)
        if arg.startswith("-") and not arg.startswith("--") and len(arg) > 1:
            for k, letter in enumerate(arg[1:], start=1):
                if letter in flags.letters:
                    code = (j,) if k + 1 < len(arg) else (j, j + 1)
                    return Interpreter(f"{shown} {arg[: k + 1]}", i, code, False)
                if letter in flags.valued:
                    value = arg[k + 1 :] or (argv[j + 1] if j + 1 < len(argv) else "")
                    if letter == "m" and name in ("python", "pypy"):
                        if value in _PYTHON_CODE_MODULES:
                            return Interpreter(f"{shown} -m {value}", i, _tail(j, argv), False)
                        return None  # runs an installed module
                    if k + 1 == len(arg):
                        j += 1  # the value is the next argument
                    break
        j += 1
    return None


def _awk_code(argv: list[str], i: int) -> Interpreter | None:
    """awk's program is its first plain argument, unless it comes from `-f file`."""
    shown, j, from_file = program_name(argv[i]), i + 1, False
    while j < len(argv):
        arg = argv[j]
        if arg in ("-e", "--source") or arg.startswith("--source="):
            return Interpreter(f"{shown} {arg.split('=')[0]}", i, (j, j + 1), False)
        if arg in ("-f", "--file", "-E", "--exec") or arg.startswith(("-f", "--file=")):
            from_file = True
            j += 2 if arg in ("-f", "--file", "-E", "--exec") else 1
            continue
        if arg in ("-F", "-v", "--assign", "--field-separator", "-i", "--include", "-l"):
            j += 2
            continue
        if arg == "--":
            j += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        j += 1
    if from_file or j >= len(argv):
        return None
    return Interpreter(f"{shown} program text", i, (j,), False)


# `e` runs a command, `w`/`W` write a file, as a command or as an `s///` flag
_SED_COMMAND = re.compile(r"(?:^|[;\n{}])\s*(?:[0-9$]+|/[^/]*/)?(?:,[0-9$]+)?\s*!?\s*[ewW]\b")
_SED_S_FLAGS = re.compile(r"s(.)(?:\\.|(?!\1).)*\1(?:\\.|(?!\1).)*\1[gpIiMm0-9]*[ew]")


def _sed_code(argv: list[str], i: int, templated: Callable[[str], bool]) -> Interpreter | None:
    """sed runs commands with `e` and writes files with `w` (GNU); `--sandbox` forbids
    both. A param inside a sed script could add either, so that is refused too."""
    if "--sandbox" in argv[i + 1 :]:
        return None
    shown, scripts, j, explicit = program_name(argv[i]), [], i + 1, False
    while j < len(argv):
        arg = argv[j]
        if arg in ("-e", "--expression"):
            scripts.append(j + 1)
            explicit, j = True, j + 2
            continue
        if arg.startswith("--expression="):
            scripts.append(j)
            explicit = True
        elif arg in ("-f", "--file", "-l", "--line-length"):
            explicit = explicit or arg in ("-f", "--file")
            j += 2
            continue
        elif not arg.startswith("-") and not explicit:
            scripts.append(j)
            break
        j += 1
    for k in scripts:
        text = argv[k] if k < len(argv) else ""
        text = text.split("=", 1)[1] if text.startswith("--expression=") else text
        if templated(text) or _SED_COMMAND.search(text) or _SED_S_FLAGS.search(text):
            return Interpreter(f"{shown} script with e/w commands or a param", i, (k,), False)
    return None


# --- wrappers that run the rest of their argv -------------------------------------------
@dataclass(frozen=True)
class _Wrapper:
    valued: frozenset[str] = frozenset()  # options that take the next argument
    positionals: int = 0  # plain arguments before the command (timeout's duration)
    assignments: bool = False  # env's VAR=value
    shell_flags: frozenset[str] = frozenset()  # options that run a shell instead
    bare_is_shell: bool = False  # no command: an interactive shell (chroot, sudo -i)


def _w(
    valued: str = "", positionals: int = 0, runs_shell: str = "", bare_is_shell: bool = False
) -> _Wrapper:
    """A wrapper's spec from space-separated option lists."""
    return _Wrapper(
        frozenset(valued.split()),
        positionals,
        shell_flags=frozenset(runs_shell.split()),
        bare_is_shell=bare_is_shell,
    )


_WRAPPERS: dict[str, _Wrapper] = {
    "env": _Wrapper(frozenset({"-u", "--unset", "-C", "--chdir", "-P"}), assignments=True),
    "sudo": _w(
        "-u --user -g --group -h --host -p --prompt -C --close-from -D --chdir -r --role "
        "-t --type -T --command-timeout -U --other-user -R --chroot",
        runs_shell="-s --shell -i --login",
    ),
    "doas": _w("-u -C", runs_shell="-s"),
    "pkexec": _w("--user"),
    "run0": _w("-u --user -D --chdir --setenv --unit --property --description"),
    "runuser": _w(
        "-u --user -g --group -G --supp-group -w --whitelist-environment",
        runs_shell="-c --command",
    ),
    "nice": _w("-n --adjustment"),
    "ionice": _w("-c --class -n --classdata"),
    "chrt": _w("-T -P -D", positionals=1),
    "taskset": _w("", positionals=1),
    "timeout": _w("-s --signal -k --kill-after", positionals=1),
    "nohup": _w(),
    "stdbuf": _w("-i --input -o --output -e --error"),
    "setsid": _w(),
    "setpriv": _w("--reuid --regid --groups --inh-caps --ambient-caps --bounding-set"),
    "chroot": _w("--userspec --groups", positionals=1, bare_is_shell=True),
    "xargs": _w(
        "-a --arg-file -d --delimiter -E -e --eof -I -i --replace -L -l --max-lines -n "
        "--max-args -P --max-procs -s --max-chars --process-slot-var"
    ),
    "flock": _w("-w --timeout -E --conflict-exit-code", 1, runs_shell="-c --command"),
    "time": _w("-f --format -o --output"),
    "command": _w(),
    "exec": _w("-a"),
    "builtin": _w(),
    "strace": _w("-o -e -p -s -u -a -b -E -I -O -P -S -X"),
    "ltrace": _w("-o -e -p -s -u -a -n -l -L -F -A -D"),
    "valgrind": _w(),
    "unbuffer": _w(),
    "caffeinate": _w("-t -w"),
    "prlimit": _w("-p --pid -o --output"),
    "numactl": _w("-C -N -m -i -p --cpunodebind --membind --interleave --preferred"),
    "cgexec": _w("-g"),
    "nsenter": _w("-t --target -S --setuid -G --setgid --wd -W --env"),
    "unshare": _w("--map-user --map-group --setuid --setgid --wd -R --root"),
    "systemd-run": _w(
        "-u --unit -p --property --description --slice -E --setenv -M --machine -H --host "
        "--uid --gid --nice --working-directory --on-calendar --on-active --on-boot "
        "--on-startup --on-unit-active --on-unit-inactive --timer-property --path-property "
        "--socket-property"
    ),
    "firejail": _w(),
    "bwrap": _w("--bind --ro-bind --dev-bind --symlink --chdir --setenv --unsetenv --uid --gid"),
    "systemd-nspawn": _w("-D --directory -M --machine -u --user --bind --chdir -E --setenv"),
    "watch": _w("-n --interval -q --equexit"),
    "screen": _w("-S -c -e -p -T -t -X"),
    "dtach": _w(),
}


def _short_cluster(arg: str, spec: _Wrapper) -> tuple[str | None, int]:
    """Read `-abc` (or `-uroot`): (a shell flag in it, arguments it spans)."""
    for k, letter in enumerate(arg[1:], start=1):
        flag = f"-{letter}"
        if flag in spec.shell_flags:
            return flag, 1
        if flag in spec.valued:
            return None, 2 if k + 1 == len(arg) else 1  # value next, or attached
    return None, 1


def _options(argv: list[str], start: int, spec: _Wrapper) -> tuple[int | None, str | None]:
    """Skip a wrapper's options: (index of its command or None, a shell flag met)."""
    j, left = start, spec.positionals
    while j < len(argv):
        arg = argv[j]
        if arg == "--":
            return (j + 1 if j + 1 < len(argv) else None), None
        if arg.startswith("--"):
            key = arg.split("=", 1)[0]
            if key in spec.shell_flags:
                return None, arg
            j += 2 if key in spec.valued and "=" not in arg else 1
            continue
        if arg.startswith("-") and len(arg) > 1 and not (left and arg[1:].isdigit()):
            shell, span = _short_cluster(arg, spec)
            if shell:
                return None, shell
            j += span
            continue
        if spec.assignments and _ASSIGNMENT.match(arg):
            j += 1
            continue
        if left:
            left, j = left - 1, j + 1
            continue
        return j, None
    return None, None


_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
# ssh options that take a value; everything after the host is the remote command
_SSH_VALUED = frozenset(
    [
        "-b",
        "-B",
        "-c",
        "-D",
        "-E",
        "-e",
        "-F",
        "-I",
        "-i",
        "-J",
        "-L",
        "-l",
        "-m",
        "-O",
        "-o",
        "-p",
        "-P",
        "-Q",
        "-R",
        "-S",
        "-W",
        "-w",
    ]
)


# options whose value ssh runs with a local shell
_SSH_LOCAL_COMMAND = re.compile(
    r"(?i)^(-o\s*)?(proxycommand|localcommand|knownhostscommand|match)\b"
)


def _ssh_remote(argv: list[str], i: int) -> int | None:
    """Index of the first word of ssh's remote command, or None when it has none."""
    j = i + 1
    while j < len(argv):
        arg = argv[j]
        if arg == "--":
            j += 1
            break
        if arg.startswith("-") and len(arg) > 1:
            j += 2 if arg[:2] in _SSH_VALUED and len(arg) == 2 else 1
            continue
        break
    # argv[j] is the destination
    return j + 1 if j + 1 < len(argv) else None


def _start_stop_daemon(argv: list[str], i: int) -> tuple[int | None, int | None]:
    """(index of the program it starts, index of its first argument after `--`)."""
    program = None
    for j in range(i + 1, len(argv) - 1):
        if argv[j] in ("--startas", "-a", "--exec", "-x"):
            program = j + 1
        elif argv[j].startswith(("--startas=", "--exec=")):
            program = j
        if argv[j] == "--":
            return program, j + 1
    return program, None


_FIND_EXEC = frozenset(("-exec", "-execdir", "-ok", "-okdir"))
_TAR_SHELL = ("--to-command", "--checkpoint-action", "-I", "--use-compress-program", "-F")
_TAR_SHELL += ("--info-script", "--new-volume-script")
NESTED = re.compile(r"^-{1,2}[A-Za-z]")


def find_interpreter(
    argv: list[str], templated: Callable[[str], bool] = lambda _: False, start: int = 0
) -> Interpreter | None:
    """The first shell or interpreter-with-code that `argv[start:]` runs, if any."""
    if start >= len(argv):
        return None
    i, arg = start, argv[start]
    if templated(arg) and not _pinned(arg):
        return Interpreter("a param chooses the program", i, (i,), True)
    name, family = program_name(arg).lower(), _family(arg)
    if family in SHELLS or name in SHELLS:
        return Interpreter(" ".join(argv[i : i + 2])[:60], i, _tail(i + 1, argv), True)
    if name in SHELL_STRING or family in SHELL_STRING:
        return Interpreter(f"{program_name(arg)} (runs a shell)", i, _tail(i + 1, argv), True)
    if family in _INTERPRETERS:
        return _interpreter_code(family, argv, i) or _nested(argv, i + 1, templated)
    if family in ("awk", "gawk", "mawk", "nawk"):
        return _awk_code(argv, i)
    if family in ("sed", "gsed"):
        return _sed_code(argv, i, templated)
    if name == "busybox":
        return find_interpreter(argv, templated, i + 1) if i + 1 < len(argv) else None
    if name == "ssh":
        local = next((a for a in argv[i + 1 :] if _SSH_LOCAL_COMMAND.search(a)), None)
        if local:
            return Interpreter(f"ssh {local[:40]} (a local shell)", i, _tail(i + 1, argv), True)
        remote = _ssh_remote(argv, i)
        if remote is None:
            return None
        return Interpreter("ssh remote command (a shell string)", i, _tail(remote, argv), True)
    if name == "find":
        for j in range(i + 1, len(argv)):
            if argv[j] in _FIND_EXEC and j + 1 < len(argv):
                end = next((k for k in range(j + 1, len(argv)) if argv[k] in (";", "+")), len(argv))
                found = find_interpreter(argv[:end], templated, j + 1)
                if found:
                    return found
        return None
    if name in ("tar", "gtar", "bsdtar"):
        for j in range(i + 1, len(argv)):
            if argv[j].split("=", 1)[0] in _TAR_SHELL:
                return Interpreter(f"tar {argv[j].split('=')[0]}", i, _tail(j, argv), True)
        return None
    if name == "start-stop-daemon":
        program, rest = _start_stop_daemon(argv, i)
        if program is not None:
            inner = [argv[program], *argv[rest:]] if rest else [argv[program]]
            found = find_interpreter(inner, templated)
            if found:
                return Interpreter(f"start-stop-daemon {found.what}", i, _tail(i + 1, argv), True)
        return None
    if name == "watch" and not any(a in ("-x", "--exec") for a in argv[i + 1 :]):
        return Interpreter("watch (runs its command with sh -c)", i, _tail(i + 1, argv), True)
    if name in ("kubectl", "oc") and "--" in argv[i + 1 :]:
        return find_interpreter(argv, templated, argv.index("--", i + 1) + 1)
    if name == "ip" and argv[i + 1 : i + 3] == ["netns", "exec"]:
        return find_interpreter(argv, templated, i + 4)
    if name == "env":
        for j in range(i + 1, len(argv)):
            if argv[j] in ("-S", "--split-string") and j + 1 < len(argv):
                found = find_interpreter(shlex.split(argv[j + 1]), templated)
                if found:
                    return Interpreter(f"env -S {found.what}", i, _tail(j + 1, argv), found.shell)
            elif argv[j].startswith(("--split-string=", "-S")) and len(argv[j]) > 2:
                text = argv[j].split("=", 1)[1] if "=" in argv[j] else argv[j][2:]
                found = find_interpreter(shlex.split(text), templated)
                if found:
                    return Interpreter(f"env -S {found.what}", i, (j,), found.shell)
    if name == "runuser" and not any(a in ("-u", "--user") for a in argv[i + 1 :]):
        return Interpreter("runuser (without -u it runs a shell)", i, _tail(i + 1, argv), True)
    spec = _WRAPPERS.get(name)
    if spec is not None:
        command, shell_flag = _options(argv, i + 1, spec)
        if shell_flag:
            return Interpreter(f"{program_name(arg)} {shell_flag}", i, _tail(i + 1, argv), True)
        if command is None:
            if spec.bare_is_shell:
                return Interpreter(f"{program_name(arg)} (a shell)", i, (), True)
            return None
        return find_interpreter(argv, templated, command)
    return _nested(argv, i + 1, templated)


_BIN_DIRS = ("/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/", "/usr/local/bin/", "/usr/local/sbin/")


def _pinned(program: str) -> bool:
    """A param may pick the program only inside a fixed directory of programs a person
    installed (`/etc/baton/services/{{ service }}`), never from the system's bin dirs."""
    fixed = program.split("{{", 1)[0]
    return fixed.startswith("/") and "/" in fixed[1:] and not fixed.startswith(_BIN_DIRS)


def _nested(argv: list[str], start: int, templated: Callable[[str], bool]) -> Interpreter | None:
    """Programs not known here (docker exec, nsenter variants, …) may still run what
    follows them: a shell or interpreter name followed by a code flag anywhere later
    (`docker exec web bash -c …`) counts. A lone name (`pkill -x bash`) does not."""
    for j in range(start, len(argv) - 1):
        family = _family(argv[j])
        if (family in SHELLS or family in _INTERPRETERS) and NESTED.match(argv[j + 1]):
            found = find_interpreter(argv, templated, j)
            if found and (not found.shell or argv[j + 1].lstrip("-")[:1] in "cilsxe"):
                return found
    return None
