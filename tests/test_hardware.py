"""yolotut.hardware: CPU fingerprint, flag parsing, package versions, `yolotut env`."""

from __future__ import annotations

import json
import os

import pytest

from yolotut import hardware
from yolotut.cli import main

# First two processor blocks of a real Xeon (Sapphire Rapids) /proc/cpuinfo, trimmed.
XEON_CPUINFO = """\
processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8488C
flags\t\t: fpu vme sse sse2 avx avx2 avx512f avx512dq avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8 avx_vnni

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: Some Other Model
flags\t\t: fpu sse
"""

# An older kernel/tool spelling, AVX-512 without AMX.
CASCADE_LAKE_CPUINFO = """\
processor : 0
model name : Intel(R) Xeon(R) Gold 6230
flags : fpu sse2 avx avx2 avx512f avx512cd avx512vnni
"""

HASWELL_CPUINFO = """\
processor\t: 0
model name\t: Intel(R) Core(TM) i7-4770 CPU @ 3.40GHz
flags\t\t: fpu sse4_2 avx avx2 fma
"""

ARM_CPUINFO = """\
processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics
CPU implementer\t: 0x41
"""


def test_parse_cpuinfo_xeon_with_amx() -> None:
    info = hardware.parse_cpuinfo(XEON_CPUINFO)
    assert info == {
        "cpu_model": "Intel(R) Xeon(R) Platinum 8488C",  # first block only
        "avx2": True,
        "avx512f": True,
        "avx512_vnni": True,
        "amx": True,
        "avx512_bf16": True,
        "avx_vnni": True,
    }


def test_parse_cpuinfo_vnni_spelling_variant() -> None:
    info = hardware.parse_cpuinfo(CASCADE_LAKE_CPUINFO)
    assert info["avx512_vnni"] is True and info["amx"] is False
    assert info["cpu_model"] == "Intel(R) Xeon(R) Gold 6230"


def test_parse_cpuinfo_avx2_only_and_avx_vnni_is_not_avx512_vnni() -> None:
    info = hardware.parse_cpuinfo(HASWELL_CPUINFO)
    assert (info["avx2"], info["avx512f"], info["avx512_vnni"], info["amx"]) == (True, False, False, False)
    # Alder Lake's 256-bit AVX-VNNI must not be reported as AVX-512 VNNI.
    alder = hardware.parse_cpuinfo("model name : i9\nflags : avx2 avx_vnni\n")
    assert alder["avx512_vnni"] is False and alder["avx_vnni"] is True


def test_parse_cpuinfo_without_x86_flags() -> None:
    info = hardware.parse_cpuinfo(ARM_CPUINFO)
    assert info["cpu_model"] is None
    assert not any(info[k] for k in ("avx2", "avx512f", "avx512_vnni", "amx"))
    assert hardware.parse_cpuinfo("")["cpu_model"] is None


@pytest.mark.parametrize(
    ("text", "label"),
    [
        (XEON_CPUINFO, "int8 fast path (VNNI)"),
        (CASCADE_LAKE_CPUINFO, "int8 fast path (VNNI)"),
        (HASWELL_CPUINFO, "supported, no VNNI"),
        (ARM_CPUINFO, "unsupported"),
    ],
)
def test_deepsparse_support_label(text: str, label: str) -> None:
    got, note = hardware.deepsparse_support({**hardware.parse_cpuinfo(text), "cores_available": 4})
    assert got == label
    assert note.endswith(".") and len(note) > 30


def test_cpu_fingerprint_on_this_machine() -> None:
    fp = hardware.cpu_fingerprint()
    assert isinstance(fp["cpu_model"], str) and fp["cpu_model"]
    for key in ("avx2", "avx512f", "avx512_vnni", "amx"):
        assert isinstance(fp[key], bool), key
    assert isinstance(fp["logical_cores"], int) and fp["logical_cores"] >= 1
    assert fp["physical_cores"] is None or 1 <= fp["physical_cores"] <= fp["logical_cores"]
    assert fp["cores_available"] == len(os.sched_getaffinity(0))
    assert 1 <= fp["cores_available"] <= fp["logical_cores"]
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            assert fp["avx2"] == (" avx2" in f.read())


def test_package_versions() -> None:
    versions = hardware.package_versions()
    assert set(versions) == {"python", *hardware.PACKAGES, "cuda_available"}
    assert versions["python"].startswith("3.")
    assert versions["numpy"] is not None and versions["torch"] is not None
    assert isinstance(versions["cuda_available"], bool)


def test_environment_report_is_json_and_complete(capsys: pytest.CaptureFixture[str]) -> None:
    report = hardware.environment_report()
    assert report["deepsparse_supported"] in {"int8 fast path (VNNI)", "supported, no VNNI", "unsupported"}
    assert json.loads(json.dumps(report)) == report
    assert main(["env", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert payload["cores_available"] == report["cores_available"]
    assert "asset_source" in payload
