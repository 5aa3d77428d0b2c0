"""``sslbench doctor``, ``sslbench --version`` and ``--debug`` (the traceback behind a one-line error)."""

import json
import platform
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

import sslbench
from sslbench.cli import app

PLUGIN = '''
from sslbench.pretext.rotnet import RotNet
from sslbench.registry import PRETEXTS


@PRETEXTS.register_module(name="doctor_probe_task")
class DoctorProbe(RotNet):
    """A plugin task doctor must list."""
'''


def test_doctor_json_reports_this_installation(tmp_path, unregister):
    (tmp_path / "shared" / "monuseg2018_train").mkdir(parents=True)
    (tmp_path / "shared" / "tnbc").mkdir()
    (tmp_path / "doctor_probe.py").write_text(PLUGIN)
    unregister.append("doctor_probe_task")
    result = CliRunner().invoke(app, ["doctor", "--json", "--device", "cpu", "--shared-data", str(tmp_path / "shared"),
                                      "--plugin", str(tmp_path / "doctor_probe.py")])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found.keys() == {"sslbench", "python", "torch", "torch_build", "cuda_available", "cuda_devices",
                            "cpu_native_bf16", "threads", "device", "arithmetic", "plugins", "plugin_components",
                            "shared_data"}
    assert (found["sslbench"], found["python"], found["torch"]) == (sslbench.__version__, platform.python_version(),
                                                                   torch.__version__)
    assert found["torch_build"] == (f"CUDA {torch.version.cuda}" if torch.version.cuda
                                    else f"ROCm {torch.version.hip}" if torch.version.hip else "CPU")
    assert found["cuda_available"] == torch.cuda.is_available()
    assert len(found["cuda_devices"]) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert found["threads"] == torch.get_num_threads() >= 1
    # the record a cpu run writes: bf16 exactly where the CPU computes it natively
    assert found["device"] == "cpu"
    assert found["arithmetic"] == {**found["arithmetic"], "threads": found["threads"], "processes": 1,
                                   "precision": "bf16" if found["cpu_native_bf16"] else "fp32",
                                   "channels_last": found["cpu_native_bf16"]}
    assert found["plugin_components"]["pretexts"] == ["doctor_probe_task"]
    assert found["plugin_components"]["backbones"] == []
    assert found["shared_data"] == {"path": str(tmp_path / "shared"), "folders": {
        "monuseg2018_train": True, "monuseg2018_test": False, "tnbc": True, "unlabeled_he": False}}


def test_doctor_table_names_what_is_missing(tmp_path):
    result = CliRunner(env={"COLUMNS": "300"}).invoke(app, ["doctor", "--device", "cpu", "--shared-data",
                                                            str(tmp_path)])  # wide: no cell wraps
    assert result.exit_code == 0, result.output
    for expected in (f"{torch.__version__} (", "missing monuseg2018_train", "missing unlabeled_he",
                     "arithmetic of a run on cpu", "torch threads"):
        assert expected in result.stdout, result.stdout


def test_doctor_refuses_a_gpu_it_cannot_see():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible here")
    result = CliRunner().invoke(app, ["doctor", "--device", "cuda"])
    assert result.exit_code == 1 and "--device cuda was asked for but no CUDA device is visible" in str(
        result.exception)


def test_version_prints_the_package_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"sslbench {sslbench.__version__}\n"


@pytest.mark.slow
def test_debug_adds_the_traceback_a_one_line_error_hides(tmp_path):
    """A plugin that fails to load is one line naming it; --debug adds the traceback down to the plugin's own
    error, which the one line leaves out (raised ``from None``)."""
    (tmp_path / "broken_plugin.py").write_text("ratio = 1 / 0\n")
    command = [sys.executable, "-m", "sslbench", "list", "--plugin", str(tmp_path / "broken_plugin.py")]
    plain = subprocess.run(command, capture_output=True, text=True, timeout=300)
    line = (f"error: plugin '{tmp_path / 'broken_plugin.py'}' failed to load (ZeroDivisionError: division by zero); "
            "fix it or drop --plugin (a name registered twice means it is also installed as a package).")
    assert plain.returncode == 2 and plain.stderr.splitlines() == [line]
    debug = subprocess.run([*command[:3], "--debug", *command[3:]], capture_output=True, text=True, timeout=300)
    assert debug.returncode == 2 and debug.stderr.splitlines()[-1] == line
    traceback = debug.stderr.split(line)[0]
    assert "Traceback" in traceback and "ratio = 1 / 0" in traceback and "in load_plugin" in traceback
