<#
.SYNOPSIS
    Installs or upgrades Reminder Bridge as a Windows service beside the practice system.

.DESCRIPTION
    Run this script from the unpacked release folder (the folder that holds pyproject.toml),
    in an elevated Windows PowerShell 5.1 or PowerShell 7 window. It:

      1. finds Python 3.11 or later (-Python, else the py launcher, else python on PATH);
      2. creates the install folder with data, log and outbox folders, readable only by
         Administrators and SYSTEM (it will hold patient data, and the service runs its code
         as SYSTEM), and a virtual environment in <InstallDir>\venv;
      3. installs the bridge from this release into that environment, in place when it is
         already installed; a server without internet access uses the release's "wheels"
         folder when there is one (pip --no-index --find-links);
      4. copies settings.yaml to the install folder only when there is none there: the clinic's
         settings are never overwritten (the release's template is kept beside them as
         settings.template.yaml, to compare after an upgrade);
      5. when upgrading, stops the service first and runs "bridge migrate" before starting it;
      6. registers the service "bridge --config <InstallDir>\settings.yaml run" with automatic
         start and restart on failure (pywin32 hosts it: python -m bridge.winservice);
      7. runs "bridge check" and reports the result; a practice database that cannot be reached
         yet does not fail the install;
      8. starts the service, unless -NoStart.

    Running it again is safe: every step looks at what is already there. An existing
    installation is upgraded in place even without -Upgrade.

    Secrets (database password, API tokens) do not belong in settings.yaml: give them to the
    bridge as BRIDGE_<SECTION>__<KEY> environment variables or through its secrets folder.

.PARAMETER InstallDir
    Folder to install into. Default: C:\ReminderBridge. It holds settings.yaml, data, log,
    outbox and the virtual environment (venv).

.PARAMETER Python
    Full path of the python.exe (3.11 or later) to build the virtual environment with. Default:
    the py launcher's Python 3.11, 3.12 or 3.13, else its newest Python 3, else python.exe on
    PATH. Python should be installed for all users (the service runs as SYSTEM). Used only when
    the virtual environment does not exist yet.

.PARAMETER ServiceName
    Name of the Windows service. Default: ReminderBridge.

.PARAMETER Upgrade
    Upgrade an existing installation: stop the service, install this release, migrate the
    bridge's store, start the service again.

.PARAMETER NoStart
    Register the service but do not start it (for example to edit settings.yaml first).

.EXAMPLE
    powershell.exe -NoProfile -ExecutionPolicy Bypass -File .\install.ps1

    First install into C:\ReminderBridge with the Python the py launcher finds, then start.

.EXAMPLE
    .\install.ps1 -Upgrade

    Upgrade in place from a newly unpacked release folder; settings and data are kept.

.EXAMPLE
    .\install.ps1 -InstallDir D:\ReminderBridge -Python 'C:\Program Files\Python311\python.exe' -NoStart

    Install on drive D: with a given Python and leave the service stopped.

.NOTES
    Output of the service: <InstallDir>\log\service.log, and the Windows Application event log
    (source: the service name). If the service will not start, run in an administrator console:
    <InstallDir>\venv\pythonservice.exe -debug <ServiceName>

    Uninstall: <InstallDir>\venv\Scripts\python.exe -m bridge.winservice remove --name <ServiceName>
    then delete the install folder (after keeping a copy of settings.yaml and data if needed).
#>
#Requires -Version 5.1
[CmdletBinding()]
param(
    [string]$InstallDir = 'C:\ReminderBridge',

    [string]$Python = '',

    [ValidatePattern('^[A-Za-z0-9_.-]{1,80}$')]
    [string]$ServiceName = 'ReminderBridge',

    [switch]$Upgrade,

    [switch]$NoStart
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$MinimumPython = [version]'3.11'
$script:Warnings = New-Object System.Collections.Generic.List[string]
$script:StoppedForUpgrade = $false

function Write-Step {
    param([Parameter(Mandatory = $true)][string]$Message)
    Write-Host ''
    Write-Host "==> $Message" -ForegroundColor Cyan
}

function Write-Info {
    param([Parameter(Mandatory = $true)][string]$Message)
    Write-Host "    $Message"
}

function Write-Warn {
    param([Parameter(Mandatory = $true)][string]$Message)
    $script:Warnings.Add($Message)
    Write-Host "WARNING: $Message" -ForegroundColor Yellow
}

function Test-Administrator {
    $identity = [Security.Principal.WindowsIdentity]::GetCurrent()
    $principal = New-Object Security.Principal.WindowsPrincipal($identity)
    return $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)
}

function Invoke-Native {
    <#
    .SYNOPSIS
        Runs a native program, shows its output indented, returns its exit code and output.
    #>
    param(
        [Parameter(Mandatory = $true)][string]$FilePath,
        [string[]]$ArgumentList = @(),
        [switch]$Quiet
    )
    if (-not (Get-Command -Name $FilePath -CommandType Application -ErrorAction SilentlyContinue)) {
        throw "Cannot run '$FilePath': program not found."
    }
    $lines = New-Object System.Collections.Generic.List[string]
    # Windows PowerShell 5.1 turns every line a program writes to stderr into an error record;
    # under 'Stop' the first warning pip prints would abort the installer. The exit code decides.
    $ErrorActionPreference = 'Continue'
    $global:LASTEXITCODE = 0
    & $FilePath @ArgumentList 2>&1 | ForEach-Object {
        $line = "$_"
        $lines.Add($line)
        if (-not $Quiet) {
            Write-Host "    $line"
        }
    }
    $exitCode = $LASTEXITCODE
    $ErrorActionPreference = 'Stop'
    return [pscustomobject]@{
        ExitCode = $exitCode
        Output   = $lines.ToArray()
    }
}

function Invoke-Checked {
    <#
    .SYNOPSIS
        Runs a native program and stops the install when its exit code is not 0.
    #>
    param(
        [Parameter(Mandatory = $true)][string]$FilePath,
        [string[]]$ArgumentList = @(),
        [Parameter(Mandatory = $true)][string]$What
    )
    $result = Invoke-Native -FilePath $FilePath -ArgumentList $ArgumentList
    if ($result.ExitCode -ne 0) {
        throw "$What failed (exit code $($result.ExitCode)); see the output above."
    }
}

function Get-PythonInfo {
    <#
    .SYNOPSIS
        Asks a Python interpreter for its version and location; $null when it does not run.
    #>
    param(
        [Parameter(Mandatory = $true)][string]$Command,
        [string[]]$PrefixArguments = @()
    )
    $probe = 'import sys; print(''PROBE'', sys.version_info[0], sys.version_info[1], int(sys.prefix != sys.base_prefix), sys.executable, sep=''|'')'
    $arguments = @($PrefixArguments) + @('-c', $probe)
    try {
        $result = Invoke-Native -FilePath $Command -ArgumentList $arguments -Quiet
    }
    catch {
        return $null
    }
    $line = $result.Output | Where-Object { $_.StartsWith('PROBE|') } | Select-Object -Last 1
    if ($result.ExitCode -ne 0 -or -not $line) {
        return $null
    }
    $parts = $line -split '\|', 5
    return [pscustomobject]@{
        Version    = [version]('{0}.{1}' -f $parts[1], $parts[2])
        IsVenv     = ($parts[3] -eq '1')
        Executable = $parts[4]
    }
}

function Find-Python {
    <#
    .SYNOPSIS
        Finds a Python 3.11+ that a service can use; throws with what was tried.
    #>
    param([string]$Requested)
    $candidates = New-Object System.Collections.Generic.List[object]
    if ($Requested) {
        if (-not (Test-Path -LiteralPath $Requested -PathType Leaf)) {
            throw "-Python '$Requested' does not exist; give the full path of python.exe."
        }
        $full = (Resolve-Path -LiteralPath $Requested).ProviderPath
        $candidates.Add([pscustomobject]@{ Command = $full; Arguments = @(); Label = $full })
    }
    else {
        $launcher = Get-Command -Name 'py.exe' -CommandType Application -ErrorAction SilentlyContinue |
            Select-Object -First 1
        if ($launcher) {
            # The versions the bridge is tested on first; the newest Python 3 last.
            foreach ($version in @('-3.11', '-3.12', '-3.13', '-3')) {
                $candidates.Add([pscustomobject]@{ Command = $launcher.Path; Arguments = @($version); Label = "py $version" })
            }
        }
        foreach ($found in @(Get-Command -Name 'python.exe' -CommandType Application -ErrorAction SilentlyContinue)) {
            $candidates.Add([pscustomobject]@{ Command = $found.Path; Arguments = @(); Label = $found.Path })
        }
    }
    $tried = New-Object System.Collections.Generic.List[string]
    foreach ($candidate in $candidates) {
        $info = Get-PythonInfo -Command $candidate.Command -PrefixArguments $candidate.Arguments
        if (-not $info) {
            $tried.Add("$($candidate.Label): does not run")
            continue
        }
        if ($info.Executable -like '*\WindowsApps\*') {
            $tried.Add("$($candidate.Label): Microsoft Store Python, which a service cannot use")
            continue
        }
        if ($info.IsVenv) {
            $tried.Add("$($candidate.Label): is itself a virtual environment")
            continue
        }
        if ($info.Version -lt $MinimumPython) {
            $tried.Add("$($candidate.Label): Python $($info.Version), too old")
            continue
        }
        return $info
    }
    $triedText = if ($tried.Count -gt 0) { $tried -join '; ' } else { 'no py launcher and no python.exe on PATH' }
    throw ("No usable Python $MinimumPython or later was found ($triedText). Install Python 3.11 " +
        'from python.org "for all users", or pass -Python with the full path of python.exe.')
}

function Protect-Folder {
    <#
    .SYNOPSIS
        Gives only Administrators and SYSTEM access to a folder and everything below it.
    #>
    param([Parameter(Mandatory = $true)][string]$Path)
    # SIDs, not names: group names are translated on non-English Windows.
    $arguments = @($Path, '/inheritance:r', '/grant:r', '*S-1-5-32-544:(OI)(CI)F', '*S-1-5-18:(OI)(CI)F', '/Q')
    $result = Invoke-Native -FilePath 'icacls.exe' -ArgumentList $arguments -Quiet
    if ($result.ExitCode -ne 0) {
        throw "icacls could not restrict access to $Path (exit code $($result.ExitCode)): $($result.Output -join ' ')"
    }
}

function Assert-OwnService {
    <#
    .SYNOPSIS
        Refuses to take over a service of the same name that runs something else.
    #>
    param(
        [Parameter(Mandatory = $true)][string]$Name,
        [Parameter(Mandatory = $true)][string]$VenvDir
    )
    $existing = Get-CimInstance -ClassName Win32_Service -Filter "Name='$Name'"
    if ($existing -and $existing.PathName -and
        $existing.PathName.IndexOf($VenvDir, [StringComparison]::OrdinalIgnoreCase) -lt 0) {
        throw ("A service named '$Name' already exists and runs $($existing.PathName), not the " +
            "installation in $InstallDir. Choose another -ServiceName, or remove that service first.")
    }
}

function Wait-ServiceHostExit {
    <#
    .SYNOPSIS
        Waits until no process runs the service host, so its files can be replaced.
    #>
    param([Parameter(Mandatory = $true)][string]$HostExe)
    for ($i = 0; $i -lt 30; $i++) {
        $running = @(Get-Process -Name 'pythonservice' -ErrorAction SilentlyContinue |
            Where-Object { $_.Path -and ($_.Path -eq $HostExe) })
        if ($running.Count -eq 0) {
            return
        }
        Start-Sleep -Seconds 1
    }
    throw "The service host $HostExe is still running 30 s after the service stopped."
}

function Invoke-Bridge {
    <#
    .SYNOPSIS
        Runs the installed bridge command with the absolute settings path.
    #>
    param([Parameter(Mandatory = $true)][string[]]$Arguments)
    $all = @('--config', $SettingsPath) + $Arguments
    return Invoke-Native -FilePath $BridgeExe -ArgumentList $all
}

$exitCode = 1
$pushedLocation = $false
# Python's output reaches this script through a pipe: make both ends speak UTF-8, so paths
# and messages with accents show as written. Both are put back when the script ends.
$previousPythonEncoding = $env:PYTHONIOENCODING
$previousConsoleEncoding = $null
try {
    $previousConsoleEncoding = [Console]::OutputEncoding
    [Console]::OutputEncoding = New-Object System.Text.UTF8Encoding($false)
}
catch {
    $previousConsoleEncoding = $null  # no console (redirected output): nothing to change
}
$env:PYTHONIOENCODING = 'utf-8'
try {
    Write-Step 'Checking this computer and the release folder'
    if (-not (Test-Administrator)) {
        throw ('This installer must run as administrator: right-click Windows PowerShell, ' +
            'choose "Run as administrator", and run it again.')
    }
    $ReleaseDir = $PSScriptRoot
    if (-not (Test-Path -LiteralPath (Join-Path $ReleaseDir 'pyproject.toml') -PathType Leaf)) {
        throw "Run install.ps1 from the unpacked release folder: no pyproject.toml in $ReleaseDir."
    }
    $TemplatePath = Join-Path $ReleaseDir 'settings.yaml'
    if (-not (Test-Path -LiteralPath $TemplatePath -PathType Leaf)) {
        throw "The release folder $ReleaseDir has no settings.yaml template; unpack the release again."
    }

    # Relative to the PowerShell location, which .NET's GetFullPath would not use.
    $InstallDir = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($InstallDir).TrimEnd('\')
    if ($InstallDir -eq $ReleaseDir.TrimEnd('\')) {
        throw 'Unpack the release into another folder than -InstallDir, then run install.ps1 from there.'
    }
    $VenvDir = Join-Path $InstallDir 'venv'
    $VenvPython = Join-Path (Join-Path $VenvDir 'Scripts') 'python.exe'
    $BridgeExe = Join-Path (Join-Path $VenvDir 'Scripts') 'bridge.exe'
    $HostExe = Join-Path $VenvDir 'pythonservice.exe'
    $SettingsPath = Join-Path $InstallDir 'settings.yaml'
    $LogDir = Join-Path $InstallDir 'log'
    $ServiceLog = Join-Path $LogDir 'service.log'
    Write-Info "Release folder: $ReleaseDir"
    Write-Info "Install folder: $InstallDir"

    $service = Get-Service -Name $ServiceName -ErrorAction SilentlyContinue
    if ($service) {
        Assert-OwnService -Name $ServiceName -VenvDir $VenvDir
    }
    $alreadyInstalled = ($null -ne $service) -or (Test-Path -LiteralPath $BridgeExe -PathType Leaf)
    $isUpgrade = $Upgrade.IsPresent
    if ($alreadyInstalled -and -not $isUpgrade) {
        Write-Info "Found an existing installation in $InstallDir; upgrading it in place."
        $isUpgrade = $true
    }
    elseif ($isUpgrade -and -not $alreadyInstalled) {
        Write-Warn "-Upgrade given, but nothing is installed in $InstallDir yet; doing a fresh install."
        $isUpgrade = $false
    }

    Write-Step "Preparing $InstallDir"
    foreach ($folder in @($InstallDir, (Join-Path $InstallDir 'data'), $LogDir, (Join-Path $InstallDir 'outbox'))) {
        if (-not (Test-Path -LiteralPath $folder -PathType Container)) {
            New-Item -ItemType Directory -Path $folder -Force | Out-Null
            Write-Info "Created $folder"
        }
    }
    Protect-Folder -Path $InstallDir
    Write-Info 'Access limited to Administrators and SYSTEM.'
    # Relative paths in settings.yaml resolve against the install folder, as in the service;
    # and python -m must not pick up the release folder's source tree instead of the installed one.
    Push-Location -LiteralPath $InstallDir
    $pushedLocation = $true

    if ($service -and $service.Status -ne 'Stopped') {
        Write-Step "Stopping the service $ServiceName"
        Stop-Service -Name $ServiceName -Force
        $service.WaitForStatus('Stopped', [TimeSpan]::FromSeconds(120))
        $script:StoppedForUpgrade = $true
        Wait-ServiceHostExit -HostExe $HostExe
        Write-Info 'Stopped.'
    }

    Write-Step 'Preparing the Python environment'
    if (Test-Path -LiteralPath $VenvPython -PathType Leaf) {
        $venvInfo = Get-PythonInfo -Command $VenvPython
        if (-not $venvInfo -or $venvInfo.Version -lt $MinimumPython) {
            throw ("The virtual environment $VenvDir does not work with Python $MinimumPython or " +
                'later (was the Python it was made from removed or upgraded?). Delete the folder ' +
                "$VenvDir and run the installer again; settings and data are kept.")
        }
        Write-Info "Using the existing virtual environment (Python $($venvInfo.Version))."
        if ($Python) {
            Write-Warn "-Python is ignored: the existing environment $VenvDir is kept. Delete it to switch Python."
        }
    }
    else {
        $basePython = Find-Python -Requested $Python
        Write-Info "Python $($basePython.Version): $($basePython.Executable)"
        if ($basePython.Executable -like "$env:SystemDrive\Users\*") {
            Write-Warn ("Python is installed for one user only ($($basePython.Executable)). The " +
                'service depends on it: prefer Python installed "for all users".')
        }
        Invoke-Checked -FilePath $basePython.Executable -ArgumentList @('-m', 'venv', $VenvDir) -What 'Creating the virtual environment'
    }

    Write-Step 'Installing Reminder Bridge from the release'
    $indexArguments = @()
    $wheelDir = Join-Path $ReleaseDir 'wheels'
    if (Test-Path -LiteralPath $wheelDir -PathType Container) {
        Write-Info "Offline install from $wheelDir"
        $indexArguments = @('--no-index', '--find-links', $wheelDir)
    }
    $pipArguments = @('-m', 'pip', 'install', '--upgrade', '--disable-pip-version-check', '--no-input') + $indexArguments + @($ReleaseDir)
    Invoke-Checked -FilePath $VenvPython -ArgumentList $pipArguments -What 'pip install'
    if (-not (Test-Path -LiteralPath $BridgeExe -PathType Leaf)) {
        throw "pip finished but $BridgeExe is missing; the release is incomplete."
    }
    $pywin32 = Invoke-Native -FilePath $VenvPython -ArgumentList @('-c', 'import win32serviceutil, servicemanager') -Quiet
    if ($pywin32.ExitCode -ne 0) {
        Write-Warn 'pywin32 did not come with the release; installing it now.'
        $pywin32Arguments = @('-m', 'pip', 'install', '--disable-pip-version-check', '--no-input') + $indexArguments + @('pywin32>=306')
        Invoke-Checked -FilePath $VenvPython -ArgumentList $pywin32Arguments -What 'pip install pywin32'
    }

    Write-Step 'Settings'
    if (Test-Path -LiteralPath $SettingsPath -PathType Leaf) {
        Write-Info "Keeping the clinic's settings: $SettingsPath (never overwritten)."
    }
    else {
        Copy-Item -LiteralPath $TemplatePath -Destination $SettingsPath
        Write-Info "Copied the template to $SettingsPath; edit it for this clinic."
    }
    Copy-Item -LiteralPath $TemplatePath -Destination (Join-Path $InstallDir 'settings.template.yaml') -Force

    if ($isUpgrade) {
        Write-Step 'Migrating the bridge store (bridge migrate)'
        $migrate = Invoke-Bridge -Arguments @('migrate')
        if ($migrate.ExitCode -ne 0) {
            throw ("bridge migrate failed (exit code $($migrate.ExitCode)); see the output above. " +
                "Fix the problem, then run: `"$BridgeExe`" --config `"$SettingsPath`" migrate")
        }
    }

    Write-Step "Registering the Windows service $ServiceName"
    $serviceArguments = @('-m', 'bridge.winservice', 'install', '--name', $ServiceName,
        '--config', $SettingsPath, '--log-dir', $LogDir, '--startup', 'auto')
    Invoke-Checked -FilePath $VenvPython -ArgumentList $serviceArguments -What 'Registering the service'
    # Restart after 1 min, 1 min, then every 5 min; the count resets after a day without failure.
    Invoke-Checked -FilePath 'sc.exe' -ArgumentList @('failure', $ServiceName, 'reset=', '86400', 'actions=', 'restart/60000/restart/60000/restart/300000') -What 'Setting the restart-on-failure actions'
    # Also restart when the service stops with an error (bridge run exited), not only on a crash.
    Invoke-Checked -FilePath 'sc.exe' -ArgumentList @('failureflag', $ServiceName, '1') -What 'Setting the failure flag'

    Write-Step 'Checking the settings against the practice system (bridge check)'
    $check = Invoke-Bridge -Arguments @('check')
    $checkPassed = ($check.ExitCode -eq 0)
    if ($checkPassed) {
        Write-Info 'bridge check passed.'
    }
    else {
        Write-Warn ("bridge check reported a problem (exit code $($check.ExitCode)); the install " +
            'goes on. If the practice database is not reachable from this server yet (firewall, ' +
            'VPN, database stopped), that is expected and the service keeps retrying; otherwise ' +
            "edit $SettingsPath. Then run: `"$BridgeExe`" --config `"$SettingsPath`" check")
    }

    $serviceState = 'registered, not started (-NoStart)'
    if (-not $NoStart) {
        Write-Step "Starting the service $ServiceName"
        try {
            Start-Service -Name $ServiceName
        }
        catch {
            throw ("Windows could not start the service: $($_.Exception.Message) See $ServiceLog " +
                "and the Application event log; or run: `"$HostExe`" -debug $ServiceName")
        }
        $script:StoppedForUpgrade = $false
        Start-Sleep -Seconds 5
        $status = (Get-Service -Name $ServiceName).Status
        if ($status -eq 'Running') {
            $serviceState = 'running'
            Write-Info 'Running.'
        }
        else {
            $serviceState = "$status"
            Write-Warn "The service stopped right after starting (status: $status). Last lines of $($ServiceLog):"
            if (Test-Path -LiteralPath $ServiceLog -PathType Leaf) {
                Get-Content -LiteralPath $ServiceLog -Tail 20 | ForEach-Object { Write-Host "    $_" }
            }
        }
    }

    $checkState = if ($checkPassed) { 'passed' } else { "FAILED (exit code $($check.ExitCode))" }
    $summary = @"

Reminder Bridge is installed.
  Install folder : $InstallDir
  Settings       : $SettingsPath
  Service        : $ServiceName ($serviceState, automatic start, restarts on failure)
  bridge check   : $checkState
  Service log    : $ServiceLog
  Commands       : "$BridgeExe" --config "$SettingsPath" check | plan | migrate
"@
    Write-Host $summary -ForegroundColor Green
    if ($script:Warnings.Count -gt 0) {
        Write-Host ''
        Write-Host "$($script:Warnings.Count) warning(s):" -ForegroundColor Yellow
        foreach ($warning in $script:Warnings) {
            Write-Host "  - $warning" -ForegroundColor Yellow
        }
    }
    $exitCode = 0
}
catch {
    Write-Host ''
    Write-Host "INSTALL FAILED: $($_.Exception.Message)" -ForegroundColor Red
    if ($script:StoppedForUpgrade) {
        Write-Host ("The service $ServiceName was stopped for the upgrade and is still stopped. " +
            "Fix the problem and run the installer again, or start it with: Start-Service $ServiceName") -ForegroundColor Red
    }
}
finally {
    if ($pushedLocation) {
        Pop-Location
    }
    $env:PYTHONIOENCODING = $previousPythonEncoding
    if ($null -ne $previousConsoleEncoding) {
        [Console]::OutputEncoding = $previousConsoleEncoding
    }
}
exit $exitCode
