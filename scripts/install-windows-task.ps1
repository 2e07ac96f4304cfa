# Runs Nexus at boot on Windows with Task Scheduler (no extra service wrapper needed).
# Run in an elevated PowerShell from the folder that holds nexus-win-x64.exe:
#   powershell -ExecutionPolicy Bypass -File install-windows-task.ps1
# Stop it gracefully with:  nexus-win-x64.exe stop --data C:\ProgramData\Nexus\data
param(
  [string]$Exe = (Join-Path $PSScriptRoot 'nexus-win-x64.exe'),
  [string]$Data = 'C:\ProgramData\Nexus\data'
)
New-Item -ItemType Directory -Force -Path $Data | Out-Null
& $Exe init --data $Data
$action = New-ScheduledTaskAction -Execute $Exe -Argument "start --data `"$Data`""
$trigger = New-ScheduledTaskTrigger -AtStartup
$settings = New-ScheduledTaskSettingsSet -RestartCount 999 -RestartInterval (New-TimeSpan -Minutes 1) -ExecutionTimeLimit ([TimeSpan]::Zero)
$principal = New-ScheduledTaskPrincipal -UserId 'SYSTEM' -LogonType ServiceAccount -RunLevel Highest
Register-ScheduledTask -TaskName 'Nexus' -Action $action -Trigger $trigger -Settings $settings -Principal $principal -Force
Start-ScheduledTask -TaskName 'Nexus'
Write-Host "Nexus runs at startup. Status: $Exe status --data `"$Data`""
