"""Synthetic Windows events in the portal's flat event shape, generated from a seed.

The mix imitates a workstation fleet that forwards Sysmon, PowerShell script block
logging (4104) and a few Security audit events. Each event has the flattened `System`
header, then the `EventData` fields. Integer fields are numbers, as the evtx package
writes them for a Security recording (`LogonType`, `KeyLength`), and hexadecimal ones
such as Security's `ProcessId` are strings. The same seed, count and mix always give
the same events, so separate processes can regenerate them instead of receiving them.

NOTE: Sysmon's `ProcessId`, ports and `TerminalSessionId` are numbers here on the
assumption that Sysmon's manifest declares them as integers; no Sysmon recording was
checked.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from .planting import RulePlan
from .pools import (
    DLLS,
    DNS_NAMES,
    DOMAIN,
    DRIVERS,
    EXTERNAL_NETWORKS,
    FILE_PATHS,
    GRANTED_ACCESS,
    HOSTS,
    INTERNAL_NETWORKS,
    LOGON_TYPES,
    PARENT_COMMAND_LINES,
    PARENT_IMAGES,
    PIPES,
    PORT_NAMES,
    PORTS,
    PRIVILEGES,
    PROGRAMS,
    PROVIDERS,
    REGISTRY_DETAILS,
    REGISTRY_KEYS,
    SCRIPT_BLOCKS,
    SCRIPT_PATHS,
    SERVICE_USERS,
    SHARES,
    SYSTEM32,
    TASK_CONTENT,
    USER_NAMES,
    WMI_QUERY,
)

# Share of each event kind in workload A's mix, in percent. The shares are estimates
# of a workstation's volume, with image loads, registry writes and process events largest.
MIXED_WEIGHTS: dict[str, float] = {
    "sysmon:1": 12.0,
    "sysmon:2": 0.5,
    "sysmon:3": 9.0,
    "sysmon:5": 8.0,
    "sysmon:6": 0.2,
    "sysmon:7": 20.0,
    "sysmon:8": 0.2,
    "sysmon:10": 7.0,
    "sysmon:11": 10.0,
    "sysmon:12": 5.0,
    "sysmon:13": 9.0,
    "sysmon:15": 0.5,
    "sysmon:17": 0.5,
    "sysmon:18": 0.5,
    "sysmon:22": 6.0,
    "sysmon:23": 1.0,
    "sysmon:25": 0.1,
    "sysmon:26": 0.3,
    "sysmon:16": 0.1,
    "powershell:4104": 4.0,
    "security:4624": 2.0,
    "security:4625": 0.3,
    "security:4672": 1.0,
    "security:4688": 1.5,
    "security:4663": 1.0,
    "security:5145": 0.5,
    "security:4698": 0.1,
}
PROCESS_CREATION_WEIGHTS: dict[str, float] = {"sysmon:1": 100.0}

START_TIME = datetime(2026, 11, 2, 8, 0, 0)
# Distinct hash strings the events draw from, as a fleet runs a limited set of binaries.
HASH_POOL_SIZE = 4000


class EventFactory:
    """A builder of events, one at a time, from a seeded random generator and the value pools."""

    def __init__(self, seed: int):
        self.random = random.Random(seed)
        self.record_id = 0
        self.clock = START_TIME
        self.hashes = [self._hashes() for _ in range(HASH_POOL_SIZE)]
        self.sids = [
            f"S-1-5-21-3623811015-3361044348-30300820-{1100 + index}"
            for index in range(len(USER_NAMES))
        ]
        self.builders: dict[str, Callable[[dict], None]] = {
            "sysmon:1": self._process_creation,
            "sysmon:2": self._file_time,
            "sysmon:3": self._network,
            "sysmon:4": self._sysmon_state,
            "sysmon:5": self._process_terminate,
            "sysmon:6": self._driver_load,
            "sysmon:7": self._image_load,
            "sysmon:8": self._remote_thread,
            "sysmon:9": self._raw_access,
            "sysmon:10": self._process_access,
            "sysmon:11": self._file_create,
            "sysmon:12": self._registry_key,
            "sysmon:13": self._registry_value,
            "sysmon:14": self._registry_rename,
            "sysmon:15": self._stream_hash,
            "sysmon:16": self._sysmon_config,
            "sysmon:17": self._pipe,
            "sysmon:18": self._pipe,
            "sysmon:19": self._wmi,
            "sysmon:20": self._wmi,
            "sysmon:21": self._wmi,
            "sysmon:22": self._dns,
            "sysmon:23": self._file_delete,
            "sysmon:24": self._clipboard,
            "sysmon:25": self._tampering,
            "sysmon:26": self._file_delete,
            "sysmon:27": self._file_delete,
            "sysmon:28": self._file_delete,
            "sysmon:29": self._file_delete,
            "sysmon:255": self._sysmon_error,
            "powershell:4104": self._script_block,
            "security:4624": self._logon,
            "security:4625": self._logon,
            "security:4672": self._special_logon,
            "security:4688": self._security_process,
            "security:4663": self._object_access,
            "security:5145": self._share_access,
            "security:4698": self._task_created,
        }

    def event(self, kind: str) -> dict:
        """Return one event of `kind` (`sysmon:1`, `security:4624`, ...).

        A Security event ID without a builder gets the header and the subject fields.
        """
        provider, id_text = kind.split(":")
        event = self._header(provider, int(id_text))
        builder = self.builders.get(kind)
        if builder is not None:
            builder(event)
        elif provider == "security":
            self._subject(event)
        return event

    # Header and shared values

    def _header(self, provider: str, event_id: int) -> dict:
        rng = self.random
        self.record_id += 1
        self.clock += timedelta(microseconds=rng.randrange(200, 40_000))
        name, guid, channel = PROVIDERS[provider]
        version, level, task, opcode, keywords = 1, 0, 12544, 0, "0x8020000000000000"
        if provider == "sysmon":
            version, level, task, keywords = 5, 4, event_id, "0x8000000000000000"
        elif provider == "powershell":
            level, task, opcode, keywords = 5, 2, 15, "0x0"
        elif event_id == 4624:
            version = 2
        return {
            "Provider_Name": name,
            "Provider_Guid": guid,
            "EventID": event_id,
            "Version": version,
            "Level": level,
            "Task": task,
            "Opcode": opcode,
            "Keywords": keywords,
            "TimeCreated": self.clock.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z",
            "EventRecordID": self.record_id,
            "Execution_ProcessID": 3120 if provider == "sysmon" else rng.randrange(600, 9000, 4),
            "Execution_ThreadID": rng.randrange(1000, 12000, 4),
            "Channel": channel,
            "Computer": rng.choice(HOSTS),
            "Security_UserID": "S-1-5-18",
        }

    def _utc(self) -> str:
        return self.clock.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]

    def _guid(self) -> str:
        text = f"{self.random.getrandbits(128):032X}"
        return f"{{{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}}}"

    def _hashes(self) -> str:
        bits = self.random.getrandbits
        return (
            f"SHA1={bits(160):040X},MD5={bits(128):032X},"
            f"SHA256={bits(256):064X},IMPHASH={bits(128):032X}"
        )

    def _user_index(self) -> int:
        return self.random.randrange(len(USER_NAMES))

    def _user(self) -> str:
        rng = self.random
        if rng.random() < 0.3:
            return rng.choice(SERVICE_USERS)
        return f"{DOMAIN}\\{rng.choice(USER_NAMES)}"

    def _fill(self, template: str) -> str:
        """Fill `{user}`, `{sid}` and `{n}` in a pool value with one user and a number."""
        if "{" not in template:
            return template
        index = self._user_index()
        return template.format(
            user=USER_NAMES[index], sid=self.sids[index], n=self.random.randrange(1, 60000)
        )

    def _image(self) -> str:
        return self._fill(self.random.choice(PROGRAMS).image)

    def _ip(self, external: bool) -> str:
        rng = self.random
        template = rng.choice(EXTERNAL_NETWORKS if external else INTERNAL_NETWORKS)
        return template.format(a=rng.randrange(0, 256), b=rng.randrange(1, 255))

    def _process_fields(self, event: dict, *, image: str | None = None) -> None:
        event["RuleName"] = "-"
        event["UtcTime"] = self._utc()
        event["ProcessGuid"] = self._guid()
        event["ProcessId"] = self.random.randrange(200, 30000, 4)
        event["Image"] = image or self._image()

    # Sysmon

    def _process_creation(self, event: dict) -> None:
        rng = self.random
        program = rng.choice(PROGRAMS)
        self._process_fields(event, image=self._fill(program.image))
        user = self._user()
        service = user.startswith("NT AUTHORITY")
        build = rng.choice((19041, 22621, 26100))
        event.update({
            "FileVersion": f"10.0.{build}.{rng.randrange(1, 5000)} (WinBuild.160101.0800)",
            "Description": program.description,
            "Product": program.product,
            "Company": program.company,
            "OriginalFileName": program.original_file_name,
            "CommandLine": self._fill(rng.choice(program.command_lines)),
            "CurrentDirectory": rng.choice((
                "C:\\Windows\\system32\\",
                f"C:\\Users\\{rng.choice(USER_NAMES)}\\",
                "C:\\Program Files\\",
            )),
            "User": user,
            "LogonGuid": self._guid(),
            "LogonId": f"0x{rng.getrandbits(24):x}",
            "TerminalSessionId": 0 if service else rng.randrange(1, 4),
            "IntegrityLevel": "System" if service else rng.choice(("Medium", "Medium", "High")),
            "Hashes": rng.choice(self.hashes),
            "ParentProcessGuid": self._guid(),
            "ParentProcessId": rng.randrange(200, 30000, 4),
            "ParentImage": rng.choice(PARENT_IMAGES),
            "ParentCommandLine": rng.choice(PARENT_COMMAND_LINES),
            "ParentUser": user if rng.random() < 0.7 else "NT AUTHORITY\\SYSTEM",
        })

    def _file_time(self, event: dict) -> None:
        self._process_fields(event)
        event["TargetFilename"] = self._fill(self.random.choice(FILE_PATHS))
        event["CreationUtcTime"] = "2025-03-14 09:12:44.512"
        event["PreviousCreationUtcTime"] = self._utc()
        event["User"] = self._user()

    def _network(self, event: dict) -> None:
        rng = self.random
        self._process_fields(event)
        external = rng.random() < 0.6
        port = rng.choice(PORTS)
        event.update({
            "User": self._user(),
            "Protocol": "udp" if port == 53 else "tcp",
            "Initiated": "true",
            "SourceIsIpv6": "false",
            "SourceIp": self._ip(False),
            "SourceHostname": rng.choice(HOSTS),
            "SourcePort": rng.randrange(49152, 65535),
            "SourcePortName": "-",
            "DestinationIsIpv6": "false",
            "DestinationIp": self._ip(external),
            "DestinationHostname": rng.choice(DNS_NAMES if external else HOSTS),
            "DestinationPort": port,
            "DestinationPortName": PORT_NAMES.get(port, "-"),
        })

    def _sysmon_state(self, event: dict) -> None:
        event["UtcTime"] = self._utc()
        event["State"] = "Started"
        event["Version"] = "15.15"
        event["SchemaVersion"] = "4.90"

    def _sysmon_config(self, event: dict) -> None:
        event["UtcTime"] = self._utc()
        event["Configuration"] = "C:\\Windows\\sysmon-config.xml"
        event["ConfigurationFileHash"] = f"SHA256={self.random.getrandbits(256):064X}"

    def _sysmon_error(self, event: dict) -> None:
        event["UtcTime"] = self._utc()
        event["ID"] = "DriverCommunication"
        event["Description"] = "Failed to retrieve events"

    def _process_terminate(self, event: dict) -> None:
        self._process_fields(event)
        event["User"] = self._user()

    def _driver_load(self, event: dict) -> None:
        rng = self.random
        event.update({
            "RuleName": "-",
            "UtcTime": self._utc(),
            "ImageLoaded": f"{SYSTEM32}\\drivers\\{rng.choice(DRIVERS)}.sys",
            "Hashes": rng.choice(self.hashes),
            "Signed": "true",
            "Signature": "Microsoft Windows",
            "SignatureStatus": "Valid",
        })

    def _image_load(self, event: dict) -> None:
        rng = self.random
        self._process_fields(event)
        dll = rng.choice(DLLS)
        event.update({
            "ImageLoaded": f"{SYSTEM32}\\{dll}",
            "FileVersion": f"10.0.22621.{rng.randrange(1, 5000)} (WinBuild.160101.0800)",
            "Description": dll.rsplit(".", 1)[0],
            "Product": "Microsoft Windows Operating System",
            "Company": "Microsoft Corporation",
            "OriginalFileName": dll,
            "Hashes": rng.choice(self.hashes),
            "Signed": "true",
            "Signature": "Microsoft Windows",
            "SignatureStatus": "Valid",
            "User": self._user(),
        })

    def _remote_thread(self, event: dict) -> None:
        rng = self.random
        event.update({
            "RuleName": "-",
            "UtcTime": self._utc(),
            "SourceProcessGuid": self._guid(),
            "SourceProcessId": rng.randrange(200, 30000, 4),
            "SourceImage": self._image(),
            "TargetProcessGuid": self._guid(),
            "TargetProcessId": rng.randrange(200, 30000, 4),
            "TargetImage": self._image(),
            "NewThreadId": rng.randrange(1000, 30000, 4),
            "StartAddress": f"0x{rng.getrandbits(44):016X}",
            "StartModule": f"{SYSTEM32}\\KERNELBASE.dll",
            "StartFunction": "CtrlRoutine",
            "SourceUser": self._user(),
            "TargetUser": self._user(),
        })

    def _raw_access(self, event: dict) -> None:
        self._process_fields(event)
        event["Device"] = "\\Device\\HarddiskVolume3"
        event["User"] = self._user()

    def _process_access(self, event: dict) -> None:
        rng = self.random
        ntdll = f"C:\\Windows\\SYSTEM32\\ntdll.dll+{rng.getrandbits(20):x}"
        kernelbase = f"{SYSTEM32}\\KERNELBASE.dll+{rng.getrandbits(20):x}"
        event.update({
            "RuleName": "-",
            "UtcTime": self._utc(),
            "SourceProcessGUID": self._guid(),
            "SourceProcessId": rng.randrange(200, 30000, 4),
            "SourceThreadId": rng.randrange(1000, 30000, 4),
            "SourceImage": self._image(),
            "TargetProcessGUID": self._guid(),
            "TargetProcessId": rng.randrange(200, 30000, 4),
            "TargetImage": self._image(),
            "GrantedAccess": rng.choice(GRANTED_ACCESS),
            "CallTrace": f"{ntdll}|{kernelbase}",
            "SourceUser": self._user(),
            "TargetUser": self._user(),
        })

    def _file_create(self, event: dict) -> None:
        self._process_fields(event)
        event["TargetFilename"] = self._fill(self.random.choice(FILE_PATHS))
        event["CreationUtcTime"] = self._utc()
        event["User"] = self._user()

    def _registry(self, event: dict, event_type: str) -> None:
        self._process_fields(event)
        event["EventType"] = event_type
        event["TargetObject"] = self._fill(self.random.choice(REGISTRY_KEYS))
        event["User"] = self._user()

    def _registry_key(self, event: dict) -> None:
        self._registry(event, "CreateKey" if self.random.random() < 0.8 else "DeleteKey")

    def _registry_value(self, event: dict) -> None:
        self._registry(event, "SetValue")
        event["Details"] = self.random.choice(REGISTRY_DETAILS)

    def _registry_rename(self, event: dict) -> None:
        self._registry(event, "RenameKey")
        event["NewName"] = event["TargetObject"] + ".old"

    def _stream_hash(self, event: dict) -> None:
        self._file_create(event)
        event["TargetFilename"] += ":Zone.Identifier"
        event["Hash"] = self.random.choice(self.hashes)
        event["Contents"] = "[ZoneTransfer]  ZoneId=3  HostUrl=https://www.example.org/"

    def _pipe(self, event: dict) -> None:
        self._process_fields(event)
        event["EventType"] = "CreatePipe" if event["EventID"] == 17 else "ConnectPipe"
        event["PipeName"] = self._fill(self.random.choice(PIPES))
        event["User"] = self._user()

    def _wmi(self, event: dict) -> None:
        event.update({
            "RuleName": "-",
            "EventType": "WmiFilterEvent",
            "UtcTime": self._utc(),
            "Operation": "Created",
            "User": self._user(),
            "EventNamespace": "root\\cimv2",
            "Name": "SCM Event Log Filter",
            "Query": WMI_QUERY,
        })

    def _dns(self, event: dict) -> None:
        rng = self.random
        self._process_fields(event)
        event["QueryName"] = rng.choice(DNS_NAMES)
        event["QueryStatus"] = "0" if rng.random() < 0.95 else "9003"
        event["QueryResults"] = f"type:  5 {rng.choice(DNS_NAMES)};::ffff:{self._ip(True)};"
        event["User"] = self._user()

    def _file_delete(self, event: dict) -> None:
        self._process_fields(event)
        event["User"] = self._user()
        event["TargetFilename"] = self._fill(self.random.choice(FILE_PATHS))
        event["Hashes"] = self.random.choice(self.hashes)
        event["IsExecutable"] = "false"
        if event["EventID"] == 23:
            event["Archived"] = "false"

    def _clipboard(self, event: dict) -> None:
        self._process_fields(event)
        event["Session"] = 1
        event["ClientInfo"] = "user: CORP\\jdoe"
        event["Hashes"] = self.random.choice(self.hashes)
        event["Archived"] = "false"
        event["User"] = self._user()

    def _tampering(self, event: dict) -> None:
        self._process_fields(event)
        event["Type"] = "Image is replaced"
        event["User"] = self._user()

    # PowerShell and Security

    def _script_block(self, event: dict) -> None:
        rng = self.random
        event.update({
            "MessageNumber": 1,
            "MessageTotal": 1,
            "ScriptBlockText": self._fill(rng.choice(SCRIPT_BLOCKS)),
            "ScriptBlockId": self._guid()[1:-1].lower(),
            "Path": rng.choice(SCRIPT_PATHS),
        })

    def _subject(self, event: dict) -> None:
        event.update({
            "SubjectUserSid": "S-1-5-18",
            "SubjectUserName": event["Computer"].split(".")[0] + "$",
            "SubjectDomainName": DOMAIN,
            "SubjectLogonId": "0x3e7",
        })

    def _target_user(self, event: dict) -> None:
        index = self._user_index()
        event.update({
            "TargetUserSid": self.sids[index],
            "TargetUserName": USER_NAMES[index],
            "TargetDomainName": DOMAIN,
            "TargetLogonId": f"0x{self.random.getrandbits(24):x}",
        })

    def _logon(self, event: dict) -> None:
        rng = self.random
        self._subject(event)
        self._target_user(event)
        logon_type = rng.choice(LOGON_TYPES)
        remote = logon_type in (3, 10)
        event.update({
            "LogonType": logon_type,
            "LogonProcessName": rng.choice(("User32", "NtLmSsp", "Kerberos", "Advapi")),
            "AuthenticationPackageName": rng.choice(("Negotiate", "NTLM", "Kerberos")),
            "WorkstationName": event["Computer"].split(".")[0],
            "LogonGuid": self._guid(),
            "TransmittedServices": "-",
            "LmPackageName": "-",
            "KeyLength": 0,
            "ProcessId": "0x2f4",
            "ProcessName": f"{SYSTEM32}\\lsass.exe",
            "IpAddress": self._ip(False) if remote else "-",
            "IpPort": str(rng.randrange(49152, 65535)) if remote else "0",
            "ImpersonationLevel": "%%1833",
            "ElevatedToken": rng.choice(("%%1842", "%%1843")),
        })
        if event["EventID"] == 4625:
            event["Status"] = "0xc000006d"
            event["FailureReason"] = "%%2313"
            event["SubStatus"] = "0xc000006a"

    def _special_logon(self, event: dict) -> None:
        self._target_user(event)
        event.update({
            "SubjectUserSid": event.pop("TargetUserSid"),
            "SubjectUserName": event.pop("TargetUserName"),
            "SubjectDomainName": event.pop("TargetDomainName"),
            "SubjectLogonId": event.pop("TargetLogonId"),
            "PrivilegeList": PRIVILEGES,
        })

    def _security_process(self, event: dict) -> None:
        rng = self.random
        program = rng.choice(PROGRAMS)
        self._subject(event)
        self._target_user(event)
        event.update({
            "NewProcessId": f"0x{rng.getrandbits(14):x}",
            "NewProcessName": self._fill(program.image),
            "TokenElevationType": rng.choice(("%%1936", "%%1937", "%%1938")),
            "ProcessId": f"0x{rng.getrandbits(14):x}",
            "CommandLine": self._fill(rng.choice(program.command_lines)),
            "ParentProcessName": rng.choice(PARENT_IMAGES),
            "MandatoryLabel": rng.choice(("S-1-16-8192", "S-1-16-12288", "S-1-16-16384")),
        })

    def _object_access(self, event: dict) -> None:
        rng = self.random
        self._subject(event)
        event.update({
            "ObjectServer": "Security",
            "ObjectType": "File",
            "ObjectName": self._fill(rng.choice(FILE_PATHS)),
            "HandleId": f"0x{rng.getrandbits(12):x}",
            "AccessList": "%%4416",
            "AccessMask": "0x1",
            "ProcessId": f"0x{rng.getrandbits(14):x}",
            "ProcessName": self._image(),
            "ResourceAttributes": "S:AI",
        })

    def _share_access(self, event: dict) -> None:
        rng = self.random
        share, local_path, target = rng.choice(SHARES)
        self._subject(event)
        event.update({
            "ObjectType": "File",
            "IpAddress": self._ip(False),
            "IpPort": str(rng.randrange(49152, 65535)),
            "ShareName": share,
            "ShareLocalPath": local_path,
            "RelativeTargetName": target,
            "AccessMask": "0x12019f",
            "AccessList": "%%1538 %%1541 %%4416",
            "AccessReason": "-",
        })

    def _task_created(self, event: dict) -> None:
        self._subject(event)
        event["TaskName"] = "\\Microsoft\\Office\\OfficeTelemetryAgentLogOn2016"
        event["TaskContent"] = TASK_CONTENT


def kind_table(weights: dict[str, float], size: int = 10_000) -> list[str]:
    """Spread event kinds over `size` slots in proportion to their weights."""
    total = sum(weights.values())
    table: list[str] = []
    for kind, weight in weights.items():
        table.extend([kind] * max(1, round(size * weight / total)))
    return table


def generate_events(
    count: int,
    *,
    seed: int,
    weights: dict[str, float],
    plans: Iterable[RulePlan] = (),
    plant_fraction: float = 0.0,
) -> tuple[list[dict], list[str | None]]:
    """Generate `count` events and plant rule values into about `plant_fraction` of them.

    Returns the events and, for each event, the key of the rule planted into it
    (None for a background event). A planted event is built as the kind of event the
    rule's logsource describes, then gets values that satisfy the rule's positive
    selections. Whether it then matches depends on the rule's filters.
    """
    factory = EventFactory(seed)
    rng = factory.random
    table = kind_table(weights)
    plans = list(plans)
    events: list[dict] = []
    planted: list[str | None] = []
    for _ in range(count):
        if plans and rng.random() < plant_fraction:
            plan = plans[rng.randrange(len(plans))]
            event = factory.event(plan.event_kind(rng))
            plan.plant(event, rng)
            events.append(event)
            planted.append(plan.key)
        else:
            events.append(factory.event(table[rng.randrange(len(table))]))
            planted.append(None)
    return events, planted
