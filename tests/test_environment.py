"""The run's context: CPU model and instruction sets from /proc/cpuinfo text, versions, the report line."""

from cnnstudy.environment import cpu_info, describe, sentence

CPUINFO_AVX512 = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512_bf16 amx_bf16 amx_tile avx_vnni
"""
CPUINFO_EPYC = "model name\t: AMD EPYC 7B13\nflags\t\t: fpu sse2 avx avx2 fma\n"


def test_cpu_info_keeps_only_the_instruction_sets_that_matter():
    assert cpu_info(CPUINFO_AVX512) == {"cpu": "Intel(R) Xeon(R) Platinum 8480+",
                                        "instruction_sets": ["amx_bf16", "amx_tile", "avx2", "avx512_bf16", "avx512f",
                                                             "avx_vnni", "fma"]}
    assert cpu_info(CPUINFO_EPYC)["instruction_sets"] == ["avx2", "fma"]


def test_sentence_says_what_is_missing_too():
    env = {**cpu_info(CPUINFO_EPYC), "cores": 2, "gpus": [], "keras_backend": "tensorflow",
           "training_devices": ["cpu"], "precision": ["float32"], "versions": {"python": "3.11.7", "jax": None}}
    text = sentence(env)
    assert text.startswith("Run on AMD EPYC 7B13 (2 cores available; avx2, fma; no AVX-512; no AMX), no GPU;")
    assert "training on cpu in float32" in text and "python 3.11.7" in text and "jax" not in text
    bf16 = sentence({**env, **cpu_info(CPUINFO_AVX512)})
    assert "AVX-512 (avx512_bf16, avx512f); AMX" in bf16


def test_describe_reports_this_machine_and_the_stages_precision():
    env = describe(["cpu", "cpu"], ["float32", None], ["tensorflow"])
    assert env["precision"] == ["float32"] and env["training_devices"] == ["cpu"]
    assert env["keras_backend"] == "tensorflow" and env["cores"] >= 1
    assert env["versions"]["numpy"] and env["versions"]["keras"]  # installed here, so found
