"""Facts of the T1560.002 "Archive via Library" detection page, as the tests expect them."""

TITLE = "Detect Archive via Library in Splunk"

FALSE_POSITIVES = [
    "Legitimate Python data science or ETL pipelines compressing output files using zlib or gzip",
    "Software installers and package managers (pip, conda, npm) that load compression "
    "libraries during package installation",
    "PowerShell-based backup or log archival scripts using System.IO.Compression.GZipStream",
    "Developer IDEs and build tools (Maven, Gradle, PyCharm) loading compression libraries "
    "during build and packaging operations",
    "Monitoring agents compressing telemetry payloads before transmission",
]

MALWARE_FAMILIES = ["TajMahal", "LunarWeb", "SeaDuke", "BBSRAT", "InvisiMole", "Denis"]

EVADED_TOOLS = ["7-Zip", "WinRAR", "tar"]

TEST_NAMES = [
    "Python zlib Compression of Sensitive File Collection",
    "PowerShell GZipStream Compression via System.IO.Compression",
    "Python bzip2 Multi-File Collection and Compression",
    "Python rarfile Library Compression (Third-Party Library)",
]

TEST_PLATFORMS = ["windows", "windows", "linux", "windows"]

# The artefact each test's file-creation signal names.
TEST_ARTIFACTS = [
    "%TEMP%\\stage_df00.zlib",
    "%TEMP%\\stage_df00.gz",
    "/tmp/stage_df00.tar.bz2",
    "%TEMP%\\stage_df00_lib.zip",
]

BRANCHES = {
    "CompressionDllLoad": 7,
    "PowerShellLibraryCompression": 1,
    "PythonLibraryCompression": 1,
    "StagedCompressedFileCreation": 11,
}

OUTPUT_FIELDS = [
    "_time",
    "host",
    "User",
    "DetectionSource",
    "ProcessPath",
    "CmdLine",
    "Artifact",
    "ParentImage",
    "ParentCommandLine",
]

SOURCETYPE = "XmlWinEventLog:Microsoft-Windows-Sysmon/Operational"

DATA_COMPONENTS = [
    "Module: Module Load",
    "Process: Process Creation",
    "File: File Creation",
]
