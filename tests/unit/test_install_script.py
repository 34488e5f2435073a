"""install.ps1 parses as PowerShell and keeps its promises; bridge.winservice works without pywin32.

No PowerShell runs here: the script is parsed with tree-sitter's PowerShell grammar (a real
parser, the one editors use), and its key behaviours are checked on the parse tree and its text.
The grammar is more lenient than PowerShell in places (it accepts ``try`` without ``catch``) and
rejects a file holding only comments; the snippets below stay clear of both.
"""

from __future__ import annotations

import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import tree_sitter
import tree_sitter_powershell

from bridge import winservice

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "install.ps1"
POWERSHELL = tree_sitter.Language(tree_sitter_powershell.language())


def parse(source: str) -> tree_sitter.Tree:
    """Parse PowerShell source with the tree-sitter grammar."""
    return tree_sitter.Parser(POWERSHELL).parse(source.encode("utf-8"))


def walk(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    """Every node below ``node``, depth first, in source order."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def syntax_errors(source: str) -> list[str]:
    """One ``line:column: ERROR|MISSING near '...'`` per problem the parser found (1-based)."""
    problems = []
    for node in walk(parse(source).root_node):
        if node.type == "ERROR" or node.is_missing:
            line, column = node.start_point
            kind = f"MISSING {node.type}" if node.is_missing else "ERROR"
            near = source.encode("utf-8")[node.start_byte : node.start_byte + 40].decode(
                "utf-8", errors="replace"
            )
            problems.append(f"{line + 1}:{column + 1}: {kind} near {near!r}")
    return problems


def text(node: tree_sitter.Node) -> str:
    assert node.text is not None
    return node.text.decode("utf-8")


def commands(tree: tree_sitter.Tree, name: str) -> list[tree_sitter.Node]:
    """The command nodes that call ``name`` (case-insensitive, as PowerShell is)."""
    found = []
    for node in walk(tree.root_node):
        if node.type == "command":
            names = [c for c in node.children if c.type == "command_name"]
            if names and text(names[0]).lower() == name.lower():
                found.append(node)
    return found


def enclosing(node: tree_sitter.Node, kind: str) -> tree_sitter.Node | None:
    parent = node.parent
    while parent is not None and parent.type != kind:
        parent = parent.parent
    return parent


def function_name(node: tree_sitter.Node) -> str | None:
    function = enclosing(node, "function_statement")
    if function is None:
        return None
    names = [c for c in function.children if c.type == "function_name"]
    return text(names[0]) if names else None


@pytest.fixture(scope="module")
def script() -> str:
    return SCRIPT.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def tree(script: str) -> tree_sitter.Tree:
    return parse(script)


# --- the checker itself --------------------------------------------------------------------------


def test_install_script_parses_without_errors(script: str) -> None:
    problems = syntax_errors(script)
    assert not problems, f"install.ps1 does not parse: first at {problems[0]} ({len(problems)})"


@pytest.mark.parametrize(
    ("snippet", "line"),
    [
        pytest.param("function Test {\n    if ($a) { 'x' }\n", 2, id="unclosed-brace"),
        pytest.param("$a = 1\n$b = 'never closed\n$c = 3\n", 2, id="unterminated-string"),
        pytest.param("param([string]$Name = )\n", 1, id="default-without-value"),
        pytest.param('$text = @"\nhere-string never closed\n', 1, id="unclosed-here-string"),
        pytest.param("$a = 1\nif ($a -eq ) { 'x' }\n", 2, id="missing-operand"),
        pytest.param("$list = @(1, 2\n", 1, id="unclosed-array"),
        pytest.param("$h = @{ Name = 'x'; Value = }\n", 1, id="hash-entry-without-value"),
    ],
)
def test_checker_finds_errors_in_broken_powershell(snippet: str, line: int) -> None:
    problems = syntax_errors(snippet)
    assert problems, f"the checker missed a syntax error in {snippet!r}"
    assert problems[0].startswith(f"{line}:") or any(p.startswith(f"{line}:") for p in problems)


def test_checker_accepts_the_constructs_the_installer_uses() -> None:
    snippet = r"""
[CmdletBinding()]
param(
    [ValidatePattern('^[A-Za-z]+$')]
    [string]$Name = 'x',
    [switch]$Force
)
Set-StrictMode -Version Latest
$arguments = @('-m', 'pip') + @('install')
& $exe @arguments 2>&1 | ForEach-Object { Write-Host "    $_" }
$params = @{ Name = $Name; ErrorAction = 'SilentlyContinue' }
Get-Service @params
try { throw 'x' } catch [System.Exception] { $m = $_.Exception.Message } finally { $done = $true }
$state = if ($Force) { 'yes' } else { 'no' }
$parts = 'a|b' -split '\|', 2
$summary = @"
Name : $Name ($($parts[0]))
"@
$literal = @'
$not expanded
'@
Write-Host ("{0} of {1}" -f 1, 2)
exit $LASTEXITCODE
"""
    assert syntax_errors(snippet) == []


# --- what the installer promises -----------------------------------------------------------------


def test_script_is_ascii(script: str) -> None:
    # Windows PowerShell 5.1 reads a script without a byte order mark in the ANSI code page.
    assert script.isascii()


def test_script_starts_with_comment_based_help(script: str) -> None:
    assert script.startswith("<#")
    help_block = script[: script.index("#>")]
    for keyword in (".SYNOPSIS", ".DESCRIPTION", ".EXAMPLE"):
        assert keyword in help_block
    for parameter in ("InstallDir", "Python", "ServiceName", "Upgrade", "NoStart"):
        assert f".PARAMETER {parameter}" in help_block


def test_parameters_and_defaults(tree: tree_sitter.Tree) -> None:
    program = [c for c in tree.root_node.children if c.type == "param_block"]
    assert program, "no script-level param block"
    params = text(program[0])
    assert re.search(r"\[string\]\$InstallDir = 'C:\\ReminderBridge'", params)
    assert re.search(r"\[string\]\$Python\b", params)
    assert re.search(r"\[string\]\$ServiceName = 'ReminderBridge'", params)
    assert "[switch]$Upgrade" in params
    assert "[switch]$NoStart" in params


def test_strict_mode_and_stop_on_errors(script: str) -> None:
    first_function = script.index("\nfunction ")
    assert "Set-StrictMode -Version Latest" in script[:first_function]
    assert "$ErrorActionPreference = 'Stop'" in script[:first_function]


def test_requires_administrator(script: str) -> None:
    assert "IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)" in script
    assert "if (-not (Test-Administrator))" in script


def test_settings_yaml_is_never_overwritten(tree: tree_sitter.Tree) -> None:
    copies = [c for c in commands(tree, "Copy-Item") if "-Destination $SettingsPath" in text(c)]
    assert len(copies) == 1, "settings.yaml must be copied in exactly one place"
    copy = copies[0]
    assert "-Force" not in text(copy)
    else_clause = enclosing(copy, "else_clause")
    assert else_clause is not None, "the copy must sit in the else branch of a Test-Path guard"
    guard = enclosing(else_clause, "if_statement")
    assert guard is not None
    condition = text(guard).split("{", 1)[0]
    assert "Test-Path -LiteralPath $SettingsPath" in condition


def test_upgrade_stops_installs_migrates_then_starts(script: str, tree: tree_sitter.Tree) -> None:
    stop = script.index("Stop-Service -Name $ServiceName")
    pip = script.index("-What 'pip install'")
    migrate = script.index("Invoke-Bridge -Arguments @('migrate')")
    start = script.index("Start-Service -Name $ServiceName")
    assert stop < pip < migrate < start
    migrate_call = [
        node
        for node in commands(tree, "Invoke-Bridge")
        if "'migrate'" in text(node)  # the call, not the function definition
    ]
    assert len(migrate_call) == 1
    guard = enclosing(migrate_call[0], "if_statement")
    assert guard is not None and text(guard).startswith("if ($isUpgrade)")
    assert "if (-not $NoStart)" in script


def test_registers_auto_start_service_with_restart_on_failure(script: str) -> None:
    assert "'-m', 'bridge.winservice', 'install'" in script
    assert "'--config', $SettingsPath" in script
    assert "'--startup', 'auto'" in script
    assert re.search(
        r"'sc\.exe' -ArgumentList @\('failure', \$ServiceName, 'reset=', '\d+'", script
    )
    assert "'actions=', 'restart/" in script
    assert "@('failureflag', $ServiceName, '1')" in script


def test_check_is_reported_but_does_not_fail_the_install(script: str) -> None:
    check = script.index("Invoke-Bridge -Arguments @('check')")
    after = script[check : check + 1200]
    assert "Write-Warn" in after
    assert "throw" not in after.split("$serviceState", 1)[0]


def test_native_programs_run_only_through_the_exit_code_check(
    script: str, tree: tree_sitter.Tree
) -> None:
    # Every native program goes through Invoke-Native, which reads $LASTEXITCODE right after it.
    calls = [n for n in walk(tree.root_node) if n.type == "command_invokation_operator"]
    assert calls, "no call operator at all"
    assert {function_name(n) for n in calls} == {"Invoke-Native"}
    native = re.compile(r"(?i)\.exe$|^(sc|icacls|py|python|pip|bridge)$")
    direct = [
        text(name)
        for node in walk(tree.root_node)
        if node.type == "command"
        for name in node.children
        if name.type == "command_name" and native.search(text(name))
    ]
    assert direct == [], f"native programs called directly: {direct}"
    body = script[script.index("function Invoke-Native") : script.index("function Invoke-Checked")]
    assert "$exitCode = $LASTEXITCODE" in body
    # Results of Invoke-Native / Invoke-Bridge are looked at; Invoke-Checked throws by itself.
    for match in re.finditer(r"\$(\w+) = Invoke-(?:Native|Bridge)\b", script):
        assert f"${match.group(1)}.ExitCode" in script, f"${match.group(1)}.ExitCode never checked"
    unassigned = re.findall(r"^(?!\s*\$\w+ = )\s*Invoke-(?:Native|Bridge) ", script, re.MULTILINE)
    assert unassigned == []
    checked = script.count("-What '")
    assert checked >= 5


def test_no_powershell_7_only_syntax(tree: tree_sitter.Tree) -> None:
    # The grammar parses && and || pipeline chains, which Windows PowerShell 5.1 rejects
    # (?? ?. and the ternary operator it does not parse at all, so they would show as errors).
    chains = [n for n in walk(tree.root_node) if n.type == "pipeline_chain_tail"]
    assert chains == []


# --- bridge.winservice ---------------------------------------------------------------------------

needs_no_pywin32 = pytest.mark.skipif(
    sys.platform == "win32", reason="checks the behaviour where pywin32 does not exist"
)


@needs_no_pywin32
def test_winservice_imports_and_refuses_clearly_without_pywin32(tmp_path: Path) -> None:
    # pythonservice.exe imports the class by this name
    assert winservice.SERVICE_CLASS.rsplit(".", 1) == ["bridge.winservice", "BridgeService"]
    assert winservice.BridgeService.__module__ == "bridge.winservice"
    with pytest.raises(RuntimeError, match="pywin32 is not installed: "):
        winservice.BridgeService(["ReminderBridge"])
    settings = tmp_path / "settings.yaml"
    settings.write_text("mode: testing\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match="pywin32 is not installed: "):
        winservice.install_service("ReminderBridge", settings)
    with pytest.raises(RuntimeError, match="pywin32 is not installed: "):
        winservice.read_options("ReminderBridge")


@needs_no_pywin32
def test_winservice_command_line_reports_missing_pywin32(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text("mode: testing\n", encoding="utf-8")
    assert winservice.main(["install", "--config", str(settings)]) == 1
    assert "error: pywin32 is not installed: " in capsys.readouterr().err


def test_service_runs_bridge_run_with_the_absolute_settings_path() -> None:
    python = Path("C:/ReminderBridge/venv/Scripts/python.exe")
    config = Path("C:/ReminderBridge/settings.yaml")
    assert winservice.build_command(python, config) == [
        str(python),
        "-m",
        "bridge",
        "--config",
        str(config),
        "run",
    ]


def test_prepare_service_host_copies_host_and_dlls_once(tmp_path: Path) -> None:
    pywin32_dir, base, venv = tmp_path / "win32", tmp_path / "Python311", tmp_path / "venv"
    for folder in (pywin32_dir, base, venv):
        folder.mkdir()
    exe = pywin32_dir / winservice.HOST_EXE
    exe.write_bytes(b"host")
    python_dll = base / "python311.dll"
    python_dll.write_bytes(b"python")
    pywintypes_dll = pywin32_dir / "pywintypes311.dll"
    pywintypes_dll.write_bytes(b"pywintypes")
    runtime = base / "vcruntime140.dll"
    runtime.write_bytes(b"runtime")
    missing_optional = base / "vcruntime140_1.dll"

    def prepare() -> Path:
        return winservice.prepare_service_host(
            venv, [exe], [python_dll, pywintypes_dll], [runtime, missing_optional]
        )

    host = prepare()
    assert host == venv / winservice.HOST_EXE
    copied = {p.name: p.read_bytes() for p in venv.iterdir()}
    assert copied == {
        winservice.HOST_EXE: b"host",
        "python311.dll": b"python",
        "pywintypes311.dll": b"pywintypes",
        "vcruntime140.dll": b"runtime",
    }
    stamp = host.stat().st_mtime_ns
    assert prepare() == host  # idempotent: an unchanged host is left alone
    assert host.stat().st_mtime_ns == stamp
    exe.write_bytes(b"host, upgraded")
    prepare()
    assert host.read_bytes() == b"host, upgraded"

    exe.unlink()  # pywin32 may have moved it into the environment already: that copy is used
    assert prepare() == host
    python_dll.unlink()
    with pytest.raises(RuntimeError, match=r"python311\.dll not found"):
        prepare()


def test_prepare_service_host_without_host_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"pythonservice\.exe not found"):
        winservice.prepare_service_host(
            tmp_path, [tmp_path / "win32" / "pythonservice.exe"], [], []
        )


posix_only = pytest.mark.skipif(sys.platform == "win32", reason="uses POSIX signals")


def wait_for_log(path: Path, needle: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text(encoding="utf-8") if path.exists() else ""
        if needle in content:
            return content
        time.sleep(0.02)
    raise AssertionError(f"{needle!r} never appeared in {path}")


def supervisor(tmp_path: Path, code: str, grace: float = 5.0) -> winservice.Supervisor:
    return winservice.Supervisor(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        log_path=tmp_path / "log" / winservice.LOG_NAME,
        grace=grace,
    )


@posix_only
def test_supervisor_logs_output_and_stops_the_child_politely(tmp_path: Path) -> None:
    child = supervisor(tmp_path, "import os, time; print('cwd=' + os.getcwd()); time.sleep(60)")
    try:
        child.start()
        wait_for_log(child.log_path, "cwd=/")
        assert child.stop() == -signal.SIGTERM
    finally:
        child.close()
    log = child.log_path.read_text(encoding="utf-8")
    assert f"\ncwd={tmp_path}\n" in log
    assert "[service] starting: " in log
    assert "[service] stopping bridge run" in log
    assert "killing" not in log


@posix_only
def test_supervisor_kills_a_child_that_ignores_the_stop_request(tmp_path: Path) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ignoring ' + 'SIGTERM'); time.sleep(60)"
    )
    child = supervisor(tmp_path, code, grace=0.3)
    try:
        child.start()
        wait_for_log(child.log_path, "ignoring SIGTERM")
        assert child.stop() == -signal.SIGKILL
    finally:
        child.close()
    assert "did not stop within" in child.log_path.read_text(encoding="utf-8")


def test_supervise_returns_the_exit_code_of_a_child_that_exits_by_itself(tmp_path: Path) -> None:
    child = supervisor(tmp_path, "import sys; print('bad settings'); sys.exit(3)")
    try:
        child.start()
        assert child.supervise(threading.Event(), poll_seconds=0.02) == 3
    finally:
        child.close()
    log = child.log_path.read_text(encoding="utf-8")
    assert "bad settings" in log
    assert "exited by itself with code 3" in log


def test_supervise_returns_none_when_asked_to_stop(tmp_path: Path) -> None:
    stop = threading.Event()
    stop.set()
    child = supervisor(tmp_path, "import time; time.sleep(60)", grace=0.5)
    try:
        child.start()
        assert child.supervise(stop, poll_seconds=0.02) is None
    finally:
        child.close()
    assert "stopped with code" in child.log_path.read_text(encoding="utf-8")
