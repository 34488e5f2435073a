r"""Run the bridge as a Windows service: pywin32 hosts the service, ``bridge run`` is its child.

pywin32's ``pythonservice.exe`` is the service host Python services on Windows already use. The
``BridgeService`` class below starts ``python -m bridge --config <absolute path> run`` as a child
process and stops it when the Service Control Manager (SCM) says so, so the service runs the very
``bridge run`` that IT staff try by hand.

Facts behind the details:

* Inside the host ``sys.executable`` is ``pythonservice.exe``: the child is started with the
  virtual environment's ``python.exe``, recorded at install time.
* A service starts in ``System32``, not in the install folder: the child gets the settings file as
  an absolute ``--config`` and runs in the settings file's folder, so relative paths in the
  settings (``data``, ``outbox``) mean the same as when the bridge is run by hand from there.
* ``pythonservice.exe`` needs ``python3XY.dll``, ``pywintypes3XY.dll`` and the VC runtime before
  Python runs, found through the plain DLL search path, and the service's ``PATH`` rarely holds the
  Python folder (python.org's installer leaves "add to PATH" unticked): ``install`` copies the host
  and those DLLs side by side into the environment's root, where ``pyvenv.cfg`` makes the host use
  the environment's packages (pywin32 issues #1450, #1451, #2056).
* Stopping: the child first gets CTRL_BREAK (``signal.SIGBREAK`` in Python) on a console the host
  shares with it; after a grace period it is killed through a job object. The job object also
  kills the child when the host itself dies, so a restarted service never runs beside an orphan.
* When ``bridge run`` exits on its own the service stops with an error, so the recovery actions the
  installer sets (``sc.exe failure`` with ``failureflag 1``) restart it.

Commands (as administrator, with the environment's ``python.exe``)::

    python -m bridge.winservice install --config C:\ReminderBridge\settings.yaml [--startup auto]
    python -m bridge.winservice start|stop|remove [--name ReminderBridge]

``<venv>\pythonservice.exe -debug ReminderBridge`` runs the installed service in the foreground.
This module imports on any platform; using the service without pywin32 raises ``RuntimeError``.
"""

from __future__ import annotations

import argparse
import contextlib
import filecmp
import logging
import logging.handlers
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

try:  # pywin32 exists on Windows only
    import pywintypes
    import servicemanager
    import win32api
    import win32con
    import win32console
    import win32job
    import win32service
    import win32serviceutil
    import winerror
except ImportError as exc:
    _PYWIN32_MISSING: ImportError | None = exc
    _ServiceFramework: Any = object
    _WIN32_ERRORS: tuple[type[BaseException], ...] = ()
else:
    _PYWIN32_MISSING = None
    _ServiceFramework = win32serviceutil.ServiceFramework
    _WIN32_ERRORS = (pywintypes.error,)

DEFAULT_SERVICE_NAME = "ReminderBridge"
DISPLAY_NAME = "Reminder Bridge"
DESCRIPTION = (
    "Sends appointment reminders for the practice system and writes patients' answers back "
    "into its appointment book."
)
SERVICE_CLASS = "bridge.winservice.BridgeService"  # the name pythonservice.exe imports
HOST_EXE = "pythonservice.exe"
LOG_NAME = "service.log"
DEFAULT_GRACE_SECONDS = 20.0
KILL_WAIT_SECONDS = 10.0
LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 5
_CLI_ERRORS: tuple[type[BaseException], ...] = (RuntimeError, OSError, *_WIN32_ERRORS)

_STARTUP = {  # --startup value -> (start type name on win32service, delayed auto start)
    "auto": ("SERVICE_AUTO_START", False),
    "delayed": ("SERVICE_AUTO_START", True),
    "manual": ("SERVICE_DEMAND_START", False),
    "disabled": ("SERVICE_DISABLED", False),
}


def _require_pywin32() -> None:
    """Raise the one clear error for every Windows-only entry point used without pywin32."""
    if _PYWIN32_MISSING is not None:
        raise RuntimeError(
            f"pywin32 is not installed: the Windows service needs it ({_PYWIN32_MISSING}); on "
            "Windows run 'python -m pip install \"pywin32>=306\"' in the bridge's environment"
        ) from _PYWIN32_MISSING


def build_command(python: Path, config: Path) -> list[str]:
    """The child's command line: ``bridge run`` with the settings file as an absolute path."""
    return [str(python), "-m", "bridge", "--config", str(config), "run"]


@dataclass(frozen=True)
class ServiceOptions:
    """What the service needs to start ``bridge run``; kept under the service's registry key."""

    config: Path
    python: Path
    log_dir: Path
    grace: float = DEFAULT_GRACE_SECONDS

    def command(self) -> list[str]:
        """The child's command line."""
        return build_command(self.python, self.config)


def read_options(service_name: str) -> ServiceOptions:
    """Read the options ``install`` stored under ``Services\\<name>\\Parameters``."""
    _require_pywin32()

    def option(key: str) -> Any:
        return win32serviceutil.GetServiceCustomOption(service_name, key)

    config = option("Config")
    if not config:
        raise RuntimeError(
            f"service {service_name} has no Config option (the settings file); run install.ps1 "
            "again, or: python -m bridge.winservice install --config <settings.yaml>"
        )
    config_path = Path(config)
    if not config_path.is_file():
        raise RuntimeError(f"service {service_name}: settings file {config_path} does not exist")
    python = option("Python") or str(Path(sys.prefix) / "Scripts" / "python.exe")
    log_dir = option("LogDir") or str(config_path.parent / "log")
    grace = option("StopGraceSeconds")
    return ServiceOptions(
        config=config_path,
        python=Path(python),
        log_dir=Path(log_dir),
        grace=float(grace) if grace else DEFAULT_GRACE_SECONDS,
    )


def _file_logger(path: Path) -> logging.Logger:
    """A private logger (not in logging's registry) writing bare lines to a rotating file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.Logger(f"bridge.winservice:{path}", logging.INFO)
    logger.addHandler(handler)
    return logger


def _copy_lines(stream: IO[bytes], logger: logging.Logger) -> None:
    """Copy the child's output into the service log until the child closes it."""
    with stream:
        for raw in iter(stream.readline, b""):
            logger.info(raw.decode("utf-8", errors="replace").rstrip("\r\n"))


class Supervisor:
    """Runs one child process, copies its output into a rotating log and stops it on request.

    Stopping asks first (CTRL_BREAK on Windows, SIGTERM elsewhere) and kills after ``grace``
    seconds. Nothing here needs pywin32; on Windows a job object is used when pywin32 is present.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        cwd: Path,
        log_path: Path,
        grace: float = DEFAULT_GRACE_SECONDS,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.command = list(command)
        self.cwd = cwd
        self.log_path = log_path
        self.grace = grace
        child_env = dict(os.environ if env is None else env)
        # Output goes to a pipe: unbuffered so the log is current, UTF-8 so no character can
        # crash a write (redirected stdio would otherwise use the ANSI code page).
        child_env.setdefault("PYTHONUNBUFFERED", "1")
        child_env.setdefault("PYTHONIOENCODING", "utf-8")
        self.env = child_env
        self._logger = _file_logger(log_path)
        self._process: subprocess.Popen[bytes] | None = None
        self._pump: threading.Thread | None = None
        self._job: Any = None

    @property
    def pid(self) -> int | None:
        """The child's process id, once started."""
        return None if self._process is None else self._process.pid

    def note(self, message: str) -> None:
        """Write one line of the service's own into the log, marked and timestamped."""
        stamp = datetime.now().astimezone().isoformat(timespec="seconds")
        self._logger.info("%s [service] %s", stamp, message)

    def start(self) -> None:
        """Start the child; its stdout and stderr go to the log."""
        if self._process is not None:
            raise RuntimeError("the child process was already started")
        self.note(f"starting: {subprocess.list2cmdline(self.command)} (in {self.cwd})")
        process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            **_child_options(),
        )
        self._process = process
        self._job = _kill_on_close_job(process)
        if self._job is None and sys.platform == "win32":
            self.note("no job object: if the service host dies, bridge run may outlive it")
        assert process.stdout is not None
        self._pump = threading.Thread(
            target=_copy_lines,
            args=(process.stdout, self._logger),
            name="child-output",
            daemon=True,
        )
        self._pump.start()

    def supervise(self, stop: threading.Event, poll_seconds: float = 1.0) -> int | None:
        """Wait until ``stop`` is set (None) or the child exits by itself (its exit code)."""
        process = self._started()
        while not stop.wait(poll_seconds):
            code = process.poll()
            if code is not None:
                self._drain()
                self.note(f"bridge run exited by itself with code {code}")
                return code
        return None

    def stop(self) -> int:
        """Ask the child to stop, kill it after the grace period; return its exit code."""
        process = self._started()
        if process.poll() is None:
            self.note(f"stopping bridge run (pid {process.pid})")
            try:
                _ask_to_stop(process)
                process.wait(self.grace)
            except OSError as exc:
                self.note(f"could not ask bridge run to stop ({exc}); killing it")
            except subprocess.TimeoutExpired:
                self.note(f"bridge run did not stop within {self.grace:.0f} s; killing it")
            if process.poll() is None:
                _kill(process, self._job)
                process.wait(KILL_WAIT_SECONDS)
            self._drain()
            self.note(f"bridge run stopped with code {process.returncode}")
        self._drain()
        return process.returncode

    def close(self) -> None:
        """Stop the child if it still runs and release the log file and handles."""
        if self._process is not None:
            self.stop()
        if self._job is not None:
            self._job.Close()
            self._job = None
        for handler in list(self._logger.handlers):
            handler.close()
            self._logger.removeHandler(handler)

    def _started(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError("the child process was not started")
        return self._process

    def _drain(self) -> None:
        if self._pump is not None:
            self._pump.join(KILL_WAIT_SECONDS)
            self._pump = None


def _child_options() -> dict[str, Any]:
    if sys.platform == "win32":
        # Its own process group, so CTRL_BREAK can be sent to the child alone.
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def _ask_to_stop(process: subprocess.Popen[bytes]) -> None:
    if sys.platform == "win32":
        # Reaches the child because the host shares its console (_share_console_with_children);
        # the venv launcher ignores console events and waits for the real interpreter.
        process.send_signal(signal.CTRL_BREAK_EVENT)
    else:
        process.terminate()


def _kill(process: subprocess.Popen[bytes], job: Any) -> None:
    if job is not None:
        win32job.TerminateJobObject(job, 1)
    else:
        process.kill()


def _kill_on_close_job(process: subprocess.Popen[bytes]) -> Any:
    """Put the child in a job that dies with the host; None where there are no job objects."""
    if sys.platform != "win32" or _PYWIN32_MISSING is not None:
        return None
    try:
        job = win32job.CreateJobObject(None, "")
        limits = win32job.JobObjectExtendedLimitInformation
        info = win32job.QueryInformationJobObject(job, limits)
        info["BasicLimitInformation"]["LimitFlags"] |= win32job.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
        win32job.SetInformationJobObject(job, limits, info)
        access = win32con.PROCESS_SET_QUOTA | win32con.PROCESS_TERMINATE
        handle = win32api.OpenProcess(access, False, process.pid)
        try:
            win32job.AssignProcessToJobObject(job, handle)
        finally:
            handle.Close()
    except pywintypes.error:
        return None  # the caller notes it; stopping then kills the child alone
    return job


def _share_console_with_children() -> None:
    """Give the host a console its children inherit, so CTRL_BREAK can reach them."""
    if servicemanager.Debugging():
        return  # `pythonservice.exe -debug` runs in a console and handles Ctrl+C itself
    with contextlib.suppress(pywintypes.error):  # it already has one
        win32console.AllocConsole()
    # The host must outlive every console event (logoff, close); the SCM stops it, not the console.
    win32api.SetConsoleCtrlHandler(lambda event: True, True)


class BridgeService(_ServiceFramework):  # type: ignore[misc]
    """The Windows service: supervises ``bridge run`` until the SCM says stop."""

    _svc_name_ = DEFAULT_SERVICE_NAME
    _svc_display_name_ = DISPLAY_NAME
    _svc_description_ = DESCRIPTION

    def __init__(self, args: Sequence[str]) -> None:
        _require_pywin32()
        super().__init__(args)
        # The SCM passes the registered name first; the installer may have chosen another one.
        self.service_name = str(args[0]) if args else self._svc_name_
        servicemanager.SetEventSourceName(self.service_name)
        self._stop_requested = threading.Event()
        self._grace = DEFAULT_GRACE_SECONDS

    def SvcStop(self) -> None:
        """SCM stop: report the wait, let SvcDoRun stop the child."""
        wait_ms = int((self._grace + KILL_WAIT_SECONDS + 5) * 1000)
        self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING, waitHint=wait_ms)
        self._stop_requested.set()

    def SvcShutdown(self) -> None:
        """Windows shuts down: stop as for an SCM stop."""
        self.SvcStop()

    def SvcDoRun(self) -> None:
        """Run the child until stopped; raise (the service fails, and restarts) if it exits."""
        options = read_options(self.service_name)
        self._grace = options.grace
        _share_console_with_children()
        supervisor = Supervisor(
            options.command(),
            cwd=options.config.parent,
            log_path=options.log_dir / LOG_NAME,
            grace=options.grace,
        )
        try:
            supervisor.start()
            servicemanager.LogInfoMsg(
                f"{self.service_name}: bridge run started (pid {supervisor.pid}); "
                f"its output is in {supervisor.log_path}"
            )
            code = supervisor.supervise(self._stop_requested)
            if code is not None:
                raise RuntimeError(
                    f"bridge run exited by itself with code {code}; see {supervisor.log_path}. "
                    "The service stops with an error so that its recovery actions restart it."
                )
        finally:
            supervisor.close()


def _copy_if_changed(source: Path, target: Path) -> None:
    if target.exists() and filecmp.cmp(source, target, shallow=False):
        return
    try:
        shutil.copy2(source, target)
    except PermissionError as exc:
        raise RuntimeError(
            f"cannot replace {target} (is the service running? stop it first)"
        ) from exc


def prepare_service_host(
    target_dir: Path,
    exe_sources: Sequence[Path],
    required: Sequence[Path],
    optional: Sequence[Path],
) -> Path:
    """Put ``pythonservice.exe`` and the DLLs it loads before Python starts into ``target_dir``.

    ``exe_sources`` are where pywin32 may have left the host (newest first); a copy already in
    ``target_dir`` is used when none is there. Returns the host's path. Idempotent.
    """
    host = target_dir / HOST_EXE
    source = next((p for p in exe_sources if p.is_file() and p != host), None)
    if source is not None:
        _copy_if_changed(source, host)
    if not host.is_file():
        searched = ", ".join(str(p) for p in exe_sources)
        raise RuntimeError(f"{HOST_EXE} not found (looked in {searched}); reinstall pywin32")
    for dll in required:
        if not dll.is_file():
            raise RuntimeError(f"{dll} not found; the service host cannot start without it")
        _copy_if_changed(dll, target_dir / dll.name)
    for dll in optional:
        if dll.is_file():
            _copy_if_changed(dll, target_dir / dll.name)
    return host


def _host_files() -> tuple[list[Path], list[Path], list[Path]]:
    """Where this Windows Python keeps the service host and the DLLs it needs."""
    python_dll = Path(win32api.GetModuleFileName(getattr(sys, "dllhandle", 0)))
    base = python_dll.parent
    exe_sources = [Path(win32service.__file__).parent / HOST_EXE]
    required = [python_dll, Path(pywintypes.__file__)]
    optional = [base / "python3.dll", base / "vcruntime140.dll", base / "vcruntime140_1.dll"]
    return exe_sources, required, optional


def install_service(
    name: str,
    config: Path,
    *,
    startup: str = "auto",
    log_dir: Path | None = None,
    grace: float = DEFAULT_GRACE_SECONDS,
) -> str:
    """Register the service, or update it when it exists; return "installed" or "updated"."""
    _require_pywin32()
    config = config.resolve()
    if not config.is_file():
        raise RuntimeError(f"settings file {config} does not exist")
    host = prepare_service_host(Path(sys.exec_prefix), *_host_files())
    type_name, delayed = _STARTUP[startup]
    start_type = getattr(win32service, type_name)
    display = DISPLAY_NAME if name == DEFAULT_SERVICE_NAME else f"{DISPLAY_NAME} ({name})"
    common: dict[str, Any] = {
        "startType": start_type,
        "exeName": str(host),
        "description": DESCRIPTION,
        "delayedstart": delayed,
    }
    try:
        win32serviceutil.InstallService(SERVICE_CLASS, name, display, **common)
        outcome = "installed"
    except pywintypes.error as exc:
        if exc.winerror != winerror.ERROR_SERVICE_EXISTS:
            raise
        win32serviceutil.ChangeServiceConfig(SERVICE_CLASS, name, displayName=display, **common)
        outcome = "updated"
    python = Path(sys.executable)
    if python.name.lower() == HOST_EXE:
        python = Path(sys.prefix) / "Scripts" / "python.exe"
    set_option = win32serviceutil.SetServiceCustomOption
    set_option(name, "Config", str(config))
    set_option(name, "Python", str(python))
    set_option(name, "LogDir", str((log_dir or config.parent / "log").resolve()))
    set_option(name, "StopGraceSeconds", int(grace))
    # Register the event log source now, as administrator: the service account may not be allowed.
    servicemanager.SetEventSourceName(name, True)
    return outcome


def remove_service(name: str) -> bool:
    """Stop and delete the service; False when it was not installed."""
    _require_pywin32()
    try:
        win32serviceutil.StopServiceWithDeps(name, waitSecs=int(DEFAULT_GRACE_SECONDS + 30))
    except pywintypes.error as exc:
        if exc.winerror == winerror.ERROR_SERVICE_DOES_NOT_EXIST:
            return False
        if exc.winerror != winerror.ERROR_SERVICE_NOT_ACTIVE:
            raise
    win32serviceutil.RemoveService(name)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bridge.winservice install|remove|start|stop``; 0 on success, 1 on an error."""
    parser = argparse.ArgumentParser(
        prog="python -m bridge.winservice",
        description="Manage the Reminder Bridge Windows service.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    install = commands.add_parser("install", help="register or update the service (idempotent)")
    install.add_argument("--config", type=Path, required=True, help="the settings file")
    install.add_argument("--startup", choices=sorted(_STARTUP), default="auto")
    install.add_argument("--log-dir", type=Path, help="default: 'log' beside the settings file")
    install.add_argument("--stop-grace", type=float, default=DEFAULT_GRACE_SECONDS, metavar="S")
    for name in ("remove", "start", "stop"):
        commands.add_parser(name, help=f"{name} the service")
    for sub in commands.choices.values():
        sub.add_argument("--name", default=DEFAULT_SERVICE_NAME, help="the service name")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            outcome = install_service(
                args.name,
                args.config,
                startup=args.startup,
                log_dir=args.log_dir,
                grace=args.stop_grace,
            )
            print(
                f"service {args.name} {outcome}: runs bridge --config {args.config.resolve()} run"
            )
        elif args.command == "remove":
            removed = remove_service(args.name)
            print(f"service {args.name} {'removed' if removed else 'was not installed'}")
        elif args.command == "start":
            _require_pywin32()
            win32serviceutil.StartService(args.name)
            win32serviceutil.WaitForServiceStatus(args.name, win32service.SERVICE_RUNNING, 60)
            print(f"service {args.name} running")
        else:
            _require_pywin32()
            win32serviceutil.StopServiceWithDeps(
                args.name, waitSecs=int(DEFAULT_GRACE_SECONDS + 30)
            )
            print(f"service {args.name} stopped")
    except _CLI_ERRORS as exc:
        print(f"error: {_describe(exc)}", file=sys.stderr)
        return 1
    return 0


def _describe(exc: BaseException) -> str:
    strerror = getattr(exc, "strerror", None)
    funcname = getattr(exc, "funcname", None)
    if funcname and strerror:  # pywintypes.error
        return f"{strerror} ({funcname}, Windows error {getattr(exc, 'winerror', '?')})"
    return str(exc)


if __name__ == "__main__":
    raise SystemExit(main())
