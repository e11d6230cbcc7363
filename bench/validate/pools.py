"""Value pools of the synthetic events: programs, users, hosts, paths, keys and names.

Host and domain names use example.com, example.org and example.net, and external
addresses include the documentation ranges 203.0.113.0/24 and 198.51.100.0/24. The
values are only written into events; nothing connects to them.
"""

from __future__ import annotations

from typing import NamedTuple

from detections.validation.events import SYSMON_CHANNEL

POWERSHELL_CHANNEL = "Microsoft-Windows-PowerShell/Operational"
SECURITY_CHANNEL = "Security"

PROVIDERS = {
    "sysmon": (
        "Microsoft-Windows-Sysmon",
        "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}",
        SYSMON_CHANNEL,
    ),
    "powershell": (
        "Microsoft-Windows-PowerShell",
        "{A0C1853B-5C40-4B15-8766-3CF1C58F985A}",
        POWERSHELL_CHANNEL,
    ),
    "security": (
        "Microsoft-Windows-Security-Auditing",
        "{54849625-5478-4994-A5BA-3E3B0328C30D}",
        SECURITY_CHANNEL,
    ),
}

USER_NAMES = [
    "adavis", "bkhan", "cmorales", "dnguyen", "eokafor", "fmeyer", "gsilva", "hchen",
    "ijohansson", "jdoe", "kpatel", "lrossi", "mgarcia", "nkowalski", "oyilmaz", "psmith",
    "qli", "rdubois", "sbrown", "tsato", "svc_backup", "svc_sql", "adm_jdoe", "helpdesk",
]
DOMAIN = "CORP"
SERVICE_USERS = [
    "NT AUTHORITY\\SYSTEM",
    "NT AUTHORITY\\LOCAL SERVICE",
    "NT AUTHORITY\\NETWORK SERVICE",
]
HOSTS = [f"WS-{number:04d}.corp.example.com" for number in range(1, 121)] + [
    f"SRV-{name}.corp.example.com" for name in ("DC01", "DC02", "FS01", "SQL01", "WEB01", "EXCH01")
]

SYSTEM32 = "C:\\Windows\\System32"
WINDOWS = "Microsoft Windows Operating System"
MICROSOFT = "Microsoft Corporation"
OFFICE = "C:\\Program Files\\Microsoft Office\\root\\Office16"
CHROME = "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"
EDGE = "C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe"
POWERSHELL = f"{SYSTEM32}\\WindowsPowerShell\\v1.0\\powershell.exe"
DEFENDER = "C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.24090.11-0\\MsMpEng.exe"
USER_PROGRAMS = "C:\\Users\\{user}\\AppData\\Local"


class Program(NamedTuple):
    """A program as Sysmon describes it, with command lines it is started with.

    `{user}` and `{n}` in the image and command lines are filled in per event, and `{{`
    stands for a literal brace.
    """

    image: str
    original_file_name: str
    description: str
    product: str
    company: str
    command_lines: tuple[str, ...]


PROGRAMS = [
    Program(
        f"{SYSTEM32}\\svchost.exe", "svchost.exe", "Host Process for Windows Services",
        WINDOWS, MICROSOFT,
        (
            f"{SYSTEM32}\\svchost.exe -k netsvcs -p -s Schedule",
            f"{SYSTEM32}\\svchost.exe -k LocalServiceNetworkRestricted -p -s EventLog",
            f"{SYSTEM32}\\svchost.exe -k DcomLaunch -p",
            f"{SYSTEM32}\\svchost.exe -k RPCSS -p",
        ),
    ),
    Program(
        f"{SYSTEM32}\\cmd.exe", "Cmd.Exe", "Windows Command Processor", WINDOWS, MICROSOFT,
        (
            '"C:\\Windows\\system32\\cmd.exe" /c dir C:\\Users\\{user}\\Documents',
            "cmd.exe /c echo %TEMP%",
            'cmd /c "C:\\Scripts\\logon_{n}.bat"',
            "C:\\Windows\\system32\\cmd.exe /d /c npm run build",
        ),
    ),
    Program(
        POWERSHELL, "PowerShell.EXE", "Windows PowerShell", WINDOWS, MICROSOFT,
        (
            f'"{POWERSHELL}" -NoProfile -File C:\\Scripts\\inventory.ps1',
            "powershell.exe -Command Get-Service | Where-Object Status -eq Running",
            "powershell.exe Get-ChildItem -Path C:\\Users\\{user}\\Downloads",
        ),
    ),
    Program(
        f"{SYSTEM32}\\conhost.exe", "CONHOST.EXE", "Console Window Host", WINDOWS, MICROSOFT,
        ("\\??\\C:\\Windows\\system32\\conhost.exe 0xffffffff -ForceV1",),
    ),
    Program(
        "C:\\Windows\\explorer.exe", "EXPLORER.EXE", "Windows Explorer", WINDOWS, MICROSOFT,
        (
            "C:\\Windows\\Explorer.EXE",
            "C:\\Windows\\explorer.exe"
            " /factory,{{75dff2b7-6936-4c06-a8bb-676a7b00b24b}} -Embedding",
        ),
    ),
    Program(
        CHROME, "chrome.exe", "Google Chrome", "Google Chrome", "Google LLC",
        (
            f'"{CHROME}"',
            f'"{CHROME}" --type=renderer --lang=en-US --renderer-client-id={{n}}',
            f'"{CHROME}" --type=utility --utility-sub-type=network.mojom.NetworkService',
        ),
    ),
    Program(
        EDGE, "msedge.exe", "Microsoft Edge", "Microsoft Edge", MICROSOFT,
        (f'"{EDGE}" --profile-directory=Default', f'"{EDGE}" --type=gpu-process'),
    ),
    Program(
        f"{OFFICE}\\OUTLOOK.EXE", "Outlook.exe", "Microsoft Outlook", "Microsoft Office", MICROSOFT,
        (f'"{OFFICE}\\OUTLOOK.EXE"',),
    ),
    Program(
        f"{OFFICE}\\WINWORD.EXE", "WinWord.exe", "Microsoft Word", "Microsoft Office", MICROSOFT,
        (f'"{OFFICE}\\WINWORD.EXE" /n "C:\\Users\\{{user}}\\Documents\\report_{{n}}.docx"',),
    ),
    Program(
        f"{OFFICE}\\EXCEL.EXE", "Excel.exe", "Microsoft Excel", "Microsoft Office", MICROSOFT,
        (f'"{OFFICE}\\EXCEL.EXE" "C:\\Users\\{{user}}\\Documents\\budget_{{n}}.xlsx"',),
    ),
    Program(
        f"{SYSTEM32}\\notepad.exe", "NOTEPAD.EXE", "Notepad", WINDOWS, MICROSOFT,
        ('"C:\\Windows\\system32\\notepad.exe" C:\\Users\\{user}\\notes.txt',),
    ),
    Program(
        f"{SYSTEM32}\\taskhostw.exe", "taskhostw.exe", "Host Process for Windows Tasks",
        WINDOWS, MICROSOFT,
        ("taskhostw.exe {{222A245B-E637-4AE9-A93F-A59CA119A75E}}",),
    ),
    Program(
        f"{SYSTEM32}\\RuntimeBroker.exe", "RuntimeBroker.exe", "Runtime Broker", WINDOWS, MICROSOFT,
        (f"{SYSTEM32}\\RuntimeBroker.exe -Embedding",),
    ),
    Program(
        f"{SYSTEM32}\\SearchIndexer.exe", "SearchIndexer.exe", "Microsoft Windows Search Indexer",
        WINDOWS, MICROSOFT,
        ("C:\\Windows\\system32\\SearchIndexer.exe /Embedding",),
    ),
    Program(
        f"{SYSTEM32}\\wbem\\WmiPrvSE.exe", "Wmiprvse.exe", "WMI Provider Host", WINDOWS, MICROSOFT,
        ("C:\\Windows\\system32\\wbem\\wmiprvse.exe -secured -Embedding",),
    ),
    Program(
        f"{SYSTEM32}\\dllhost.exe", "dllhost.exe", "COM Surrogate", WINDOWS, MICROSOFT,
        ("C:\\Windows\\system32\\DllHost.exe /Processid:{{AB8902B4-09CA-4BB6-B78D-A8F59079A8D5}}",),
    ),
    Program(
        f"{SYSTEM32}\\rundll32.exe", "RUNDLL32.EXE", "Windows host process (Rundll32)",
        WINDOWS, MICROSOFT,
        (
            "C:\\Windows\\system32\\rundll32.exe C:\\Windows\\system32\\inetcpl.cpl,"
            "ClearMyTracksByProcess Flags:65800 WinX:0 WinY:0 IEFrame:0000000000000000",
        ),
    ),
    Program(
        f"{SYSTEM32}\\msiexec.exe", "msiexec.exe", "Windows Installer",
        "Windows Installer - Unicode", MICROSOFT,
        (
            "C:\\Windows\\system32\\msiexec.exe /V",
            '"C:\\Windows\\System32\\msiexec.exe"'
            ' /i "C:\\Users\\{user}\\Downloads\\setup_{n}.msi" /qn',
        ),
    ),
    Program(
        "C:\\Program Files\\Git\\cmd\\git.exe", "git.exe", "Git for Windows", "Git",
        "The Git Development Community",
        (
            '"C:\\Program Files\\Git\\cmd\\git.exe" fetch --all',
            '"C:\\Program Files\\Git\\cmd\\git.exe" status --porcelain',
        ),
    ),
    Program(
        f"{USER_PROGRAMS}\\Programs\\Python\\Python311\\python.exe", "python.exe", "Python",
        "Python", "Python Software Foundation",
        ("python.exe -m pip list", "python.exe C:\\Users\\{user}\\src\\report.py --week {n}"),
    ),
    Program(
        f"{USER_PROGRAMS}\\Programs\\Microsoft VS Code\\Code.exe", "electron.exe",
        "Visual Studio Code", "Visual Studio Code", MICROSOFT,
        (f'"{USER_PROGRAMS}\\Programs\\Microsoft VS Code\\Code.exe" --type=renderer',),
    ),
    Program(
        DEFENDER, "MsMpEng.exe", "Antimalware Service Executable", WINDOWS, MICROSOFT,
        (f'"{DEFENDER}"',),
    ),
    Program(
        f"{SYSTEM32}\\sc.exe", "sc.exe", "Service Control Manager Configuration Tool",
        WINDOWS, MICROSOFT,
        ("sc.exe query wuauserv", "sc query type= service state= all"),
    ),
    Program(
        f"{SYSTEM32}\\schtasks.exe", "schtasks.exe", "Task Scheduler Configuration Tool",
        WINDOWS, MICROSOFT,
        (
            "schtasks.exe /query /fo LIST",
            'schtasks /run /tn "\\Microsoft\\Windows\\Defrag\\ScheduledDefrag"',
        ),
    ),
    Program(
        f"{SYSTEM32}\\ipconfig.exe", "ipconfig.exe", "IP Configuration Utility", WINDOWS, MICROSOFT,
        ("ipconfig /all", "ipconfig /flushdns"),
    ),
    Program(
        f"{SYSTEM32}\\whoami.exe", "whoami.exe", "whoami - displays logged on user information",
        WINDOWS, MICROSOFT,
        ("whoami", "whoami /groups"),
    ),
    Program(
        "C:\\Program Files\\Microsoft OneDrive\\OneDrive.exe", "OneDrive.exe",
        "Microsoft OneDrive", "Microsoft OneDrive", MICROSOFT,
        ('"C:\\Program Files\\Microsoft OneDrive\\OneDrive.exe" /background',),
    ),
    Program(
        f"{USER_PROGRAMS}\\Microsoft\\Teams\\current\\Teams.exe", "Teams.exe", "Microsoft Teams",
        "Microsoft Teams", MICROSOFT,
        (f'"{USER_PROGRAMS}\\Microsoft\\Teams\\current\\Teams.exe" --type=renderer',),
    ),
]
PARENT_IMAGES = [
    f"{SYSTEM32}\\services.exe", "C:\\Windows\\explorer.exe", f"{SYSTEM32}\\svchost.exe",
    f"{SYSTEM32}\\cmd.exe", POWERSHELL, CHROME, f"{SYSTEM32}\\userinit.exe",
    f"{SYSTEM32}\\wininit.exe", f"{SYSTEM32}\\taskhostw.exe",
]
PARENT_COMMAND_LINES = [
    "C:\\Windows\\system32\\services.exe",
    "C:\\Windows\\Explorer.EXE",
    "C:\\Windows\\system32\\svchost.exe -k netsvcs -p",
]
DLLS = [
    "ntdll.dll", "kernel32.dll", "KernelBase.dll", "user32.dll", "gdi32.dll", "advapi32.dll",
    "msvcrt.dll", "sechost.dll", "rpcrt4.dll", "combase.dll", "ole32.dll", "oleaut32.dll",
    "shell32.dll", "shlwapi.dll", "ws2_32.dll", "crypt32.dll", "bcrypt.dll", "wininet.dll",
    "winhttp.dll", "dnsapi.dll", "iphlpapi.dll", "uxtheme.dll", "dwmapi.dll", "version.dll",
    "amsi.dll", "clbcatq.dll", "wldp.dll", "profapi.dll", "cryptbase.dll", "msasn1.dll",
]
DRIVERS = ["tcpip", "ndis", "netio", "wdfilter", "mssecflt", "iaStorAC"]
DNS_NAMES = [
    "login.microsoftonline.com", "graph.microsoft.com", "outlook.office365.com",
    "teams.microsoft.com", "ctldl.windowsupdate.com", "settings-win.data.microsoft.com",
    "www.google.com", "update.googleapis.com", "clients2.google.com", "github.com",
    "objects.githubusercontent.com", "pypi.org", "files.pythonhosted.org",
    "intranet.corp.example.com", "fs01.corp.example.com", "dc01.corp.example.com",
    "wpad.corp.example.com", "www.example.org", "cdn.example.net", "api.example.com",
]
CURRENT_VERSION = "Software\\Microsoft\\Windows\\CurrentVersion"
# `{sid}` is filled in with a user's SID per event.
REGISTRY_KEYS = [
    f"HKLM\\{CURRENT_VERSION}\\Run\\OneDrive",
    "HKLM\\System\\CurrentControlSet\\Services\\bam\\State\\UserSettings\\{sid}"
    "\\\\Device\\HarddiskVolume3\\Windows\\System32\\cmd.exe",
    f"HKU\\{{sid}}\\{CURRENT_VERSION}\\Explorer\\RecentDocs\\.docx\\{{n}}",
    f"HKU\\{{sid}}\\{CURRENT_VERSION}\\Explorer\\UserAssist"
    "\\{{CEBFF5CD-ACE2-4F4F-9178-9926F41749EA}}\\Count\\HRZR_PGYFRFFVBA",
    "HKLM\\SOFTWARE\\Microsoft\\Windows Defender\\Signature Updates\\SignaturesLastUpdated",
    "HKLM\\System\\CurrentControlSet\\Services\\W32Time\\Config\\LastKnownGoodTime",
    "HKU\\{sid}\\Software\\Microsoft\\Office\\16.0\\Common\\Roaming\\Identities\\{n}",
    "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Schedule\\TaskCache\\Tree"
    "\\Microsoft\\Windows\\UpdateOrchestrator\\Schedule Scan",
    "HKU\\{sid}\\Software\\Google\\Chrome\\PreferenceMACs\\Default\\extensions.settings",
    "HKLM\\System\\CurrentControlSet\\Services\\Tcpip\\Parameters\\Interfaces"
    "\\{{5C1E4E0A-{n:04d}-4A6B-9C3B-1F2E3D4C5B6A}}\\DhcpIPAddress",
]
REGISTRY_DETAILS = [
    "DWORD (0x00000001)",
    "DWORD (0x00000000)",
    "QWORD (0x00000000-0x5f3e1a2b)",
    "Binary Data",
    "C:\\Program Files\\Microsoft OneDrive\\OneDrive.exe /background",
    "(Empty)",
]
FILE_PATHS = [
    "C:\\Users\\{user}\\AppData\\Local\\Temp\\tmp{n:04X}.tmp",
    "C:\\Users\\{user}\\Downloads\\invoice_{n}.pdf",
    "C:\\Users\\{user}\\Documents\\report_{n}.docx",
    "C:\\Windows\\Prefetch\\CHROME.EXE-{n:08X}.pf",
    f"{USER_PROGRAMS}\\Google\\Chrome\\User Data\\Default\\Cache\\Cache_Data\\f_{{n:06x}}",
    "C:\\ProgramData\\Microsoft\\Windows Defender\\Scans\\History\\Service\\DetectionHistory\\{n}",
    "C:\\Windows\\SoftwareDistribution\\Download\\{n:08x}\\update.cab",
    "C:\\Users\\{user}\\AppData\\Roaming\\Microsoft\\Windows\\Recent\\report_{n}.lnk",
]
SCRIPT_BLOCKS = [
    "Get-ChildItem -Path C:\\Users\\{user}\\Documents -Recurse -Filter *.docx",
    "Import-Module ActiveDirectory; Get-ADUser -Identity {user}",
    "Get-Service | Where-Object {{ $_.Status -eq 'Running' }} | Select-Object Name",
    "$PSVersionTable.PSVersion",
    "Set-StrictMode -Version 1; $_.PSMessageDetails",
    "Get-WinEvent -LogName System -MaxEvents {n}",
    "Test-NetConnection -ComputerName fs01.corp.example.com -Port 445",
    "prompt",
    "{{ Set-StrictMode -Version 1; $this.Exception.InnerException.PSMessageDetails }}",
    "Invoke-RestMethod -Uri https://api.example.com/status -UseBasicParsing",
]
SCRIPT_PATHS = [
    "",
    "C:\\Scripts\\inventory.ps1",
    "C:\\Program Files\\WindowsPowerShell\\Modules\\PSReadLine\\2.0.0\\PSReadLine.psm1",
]
PIPES = [
    "\\lsass", "\\ntsvcs", "\\srvsvc", "\\wkssvc", "\\PSHost.{n}.DefaultAppDomain.powershell",
    "\\mojo.{n}.chrome", "\\LOCAL\\crashpad_{n}_ABCDEFGH",
]
INTERNAL_NETWORKS = ["10.20.{a}.{b}", "10.30.{a}.{b}", "172.16.{a}.{b}", "192.168.{a}.{b}"]
EXTERNAL_NETWORKS = [
    "20.190.{a}.{b}", "52.96.{a}.{b}", "142.250.{a}.{b}", "140.82.{a}.{b}", "151.101.{a}.{b}",
    "203.0.113.{b}", "198.51.100.{b}",
]
PORTS = [443, 443, 443, 80, 445, 53, 135, 389, 88, 3389, 5985, 8080]
PORT_NAMES = {443: "https", 80: "http", 445: "microsoft-ds", 53: "domain"}
GRANTED_ACCESS = ["0x1000", "0x1400", "0x1410", "0x101000", "0x1fffff", "0x40", "0x100000"]
LOGON_TYPES = [2, 3, 3, 3, 5, 5, 7, 10, 11]
PRIVILEGES = "\n\t\t\t".join(
    ["SeSecurityPrivilege", "SeBackupPrivilege", "SeRestorePrivilege", "SeTakeOwnershipPrivilege",
     "SeDebugPrivilege"]
)
SHARES = [
    ("\\\\*\\IPC$", "", "srvsvc"),
    ("\\\\*\\IPC$", "", "lsarpc"),
    (
        "\\\\*\\SYSVOL",
        "\\??\\C:\\Windows\\SYSVOL\\sysvol",
        "corp.example.com\\Policies\\{31B2F340-016D-11D2-945F-00C04FB984F9}\\gpt.ini",
    ),
    ("\\\\*\\Public", "\\??\\D:\\Public", "reports\\week.xlsx"),
]
TASK_CONTENT = (
    '<?xml version="1.0" encoding="UTF-16"?><Task version="1.2"><Actions><Exec>'
    f"<Command>{OFFICE}\\msoia.exe</Command></Exec></Actions></Task>"
)
WMI_QUERY = (
    "SELECT * FROM __InstanceModificationEvent WITHIN 60 "
    "WHERE TargetInstance ISA 'Win32_Service'"
)
