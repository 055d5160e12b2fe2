"""Mutation testing, module by module, each against its own fast tests (docs/testing.md, "Mutation testing").

    python tests/mutation.py                      # every module below, in this order
    python tests/mutation.py envs/reward.py ...   # some of them (paths under neuroloop_gpu/)

For each module: a clean export of HEAD (``git archive``) in ``$TMPDIR/neuroloop-mutation/``, mutmut
(``[tool.mutmut]`` in pyproject.toml) restricted there to that module and its tests, run with one worker
under ``nice -n 15``; its counts, with the surviving mutants' names, are merged into
``tests/mutation_report.json`` (``equivalent`` there is kept: it is written by hand, one reason each).
Not collected by pytest (the name does not start with ``test_``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "tests" / "mutation_report.json"
MODULES = {  # module under neuroloop_gpu/ -> the fast tests that check what it computes
    "network/monitors.py": ["tests/test_values.py", "tests/test_open_loop_values.py"],
    "envs/observation.py": ["tests/test_values.py", "tests/test_reward_values.py"],
    "envs/reward.py": ["tests/test_values.py", "tests/test_reward_values.py"],
    "envs/actions.py": ["tests/test_values.py", "tests/test_envs.py"],
    "envs/core.py": [
        "tests/test_values.py",
        "tests/test_reward_values.py",
        "tests/test_lasting_task.py",
        "tests/test_action_values.py",
    ],
    "open_loop.py": ["tests/test_open_loop_values.py", "tests/test_open_loop_mutants.py"],
    "evaluation.py": ["tests/test_evaluation_values.py", "tests/test_evaluation.py", "tests/test_evaluation_tables.py"],
    "envs/vector_env.py": ["tests/test_vector_env_values.py", "tests/test_values.py", "tests/test_envs.py"],
    "envs/single_env.py": ["tests/test_single_env_values.py", "tests/test_values.py", "tests/test_envs.py"],
    "envs/torchrl_env.py": ["tests/test_torchrl_env_values.py", "tests/test_values.py", "tests/test_envs.py"],
    "envs/rendering.py": ["tests/test_values.py", "tests/test_envs.py", "tests/test_rendering_values.py"],
    "plots.py": [
        "tests/test_figures.py",
        "tests/test_figure_style.py",
        "tests/test_sweep_figure.py",
        "tests/test_plots.py",
        "tests/test_open_loop_values.py",
    ],
    "control/controllers.py": [
        "tests/test_control.py",
        "tests/test_evaluation_values.py",
        "tests/test_controller_mutants.py",
    ],
    "control/imitation.py": ["tests/test_imitation_values.py", "tests/test_imitation.py"],
    "control/policy.py": ["tests/test_control.py", "tests/test_ppo.py"],
    "control/checkpoint.py": ["tests/test_checkpoint_values.py", "tests/test_ppo.py"],
    "control/ppo.py": ["tests/test_ppo_values.py", "tests/test_train_log_values.py", "tests/test_ppo.py"],
    "control/distributed.py": ["tests/test_distributed_values.py"],
}


def configure(pyproject: Path, module: str, tests: list[str]) -> None:
    """Point the export's [tool.mutmut] at one module and its tests."""
    text = pyproject.read_text()
    text = re.sub(
        r"only_mutate = \[.*?\]\n", f"only_mutate = {json.dumps(['neuroloop_gpu/' + module])}\n", text, flags=re.S
    )
    text = re.sub(
        r"pytest_add_cli_args_test_selection = \[.*?\]\n",
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n",
        text,
        flags=re.S,
    )
    pyproject.write_text(text)


def counts(export: Path, module: str) -> dict:
    meta = json.loads((export / "mutants" / "neuroloop_gpu" / f"{module}.meta").read_text())["exit_code_by_key"]
    status = {
        1: "killed",
        3: "killed",
        0: "survived",
        5: "no_tests",
        33: "no_tests",
        34: "skipped",
        36: "timeout",
        24: "timeout",
        -24: "timeout",
        152: "timeout",
        255: "timeout",
        -11: "segfault",
        -9: "segfault",
        None: "not_checked",
    }
    out: dict = {"total": len(meta)}
    survivors = []
    for name, code in meta.items():
        kind = status.get(code, "suspicious")
        out[kind] = out.get(kind, 0) + 1
        if kind == "survived":
            survivors.append(name)
    out["survivors"] = sorted(survivors)
    return out


def run(module: str, commit: str) -> dict:
    export = Path(tempfile.gettempdir()) / "neuroloop-mutation" / module.replace("/", "_").removesuffix(".py")
    subprocess.run(["rm", "-rf", str(export)], check=True)
    export.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(export)], input=archive, check=True)
    configure(export / "pyproject.toml", module, MODULES[module])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(
        ["nice", "-n", "15", sys.executable, "-m", "mutmut", "run", "--max-children", "1"],
        cwd=export,
        env=env,
        check=False,
        stdout=subprocess.DEVNULL,
    )
    return {"module": f"neuroloop_gpu/{module}", "tests": MODULES[module], **counts(export, module)}


def main(argv: list[str]) -> None:
    modules = argv or list(MODULES)
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        raise SystemExit(f"unknown modules {unknown}; known: {list(MODULES)}")
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    for module in modules:
        result = run(module, commit)
        result["commit"] = commit
        print(json.dumps({k: v for k, v in result.items() if k != "survivors"}), flush=True)
        # read it again: the hand-written parts may have been edited while the module ran
        report = json.loads(REPORT.read_text()) if REPORT.is_file() else {"tool": "", "equivalent": []}
        by_module = {m["module"]: m for m in report.get("modules", [])}
        by_module[result["module"]] = result
        report["modules"] = [by_module[f"neuroloop_gpu/{m}"] for m in MODULES if f"neuroloop_gpu/{m}" in by_module]
        version = subprocess.run([sys.executable, "-m", "pip", "show", "mutmut"], capture_output=True, text=True)
        report["tool"] = "mutmut " + next(
            (line.split()[1] for line in version.stdout.splitlines() if line.startswith("Version:")), "?"
        )
        REPORT.write_text(json.dumps(summarise(report), indent=1) + "\n")


def summarise(report: dict) -> dict:
    """Totals over the modules run. ``equivalent`` ({mutant, reason}) and ``killed_after_run`` ({mutant,
    test}: survived the run, killed by a test added since, checked by hand) are written by hand and kept;
    ``survived`` counts the survivors that are neither."""
    done = report.get("modules", [])
    survivors = {name for m in done for name in m.get("survivors", [])}
    # a hand-written entry for a mutant that the module's latest run no longer lets survive is history: drop it
    prefixes = tuple(m["module"].removesuffix(".py").replace("/", ".") + "." for m in done)
    for key in ("equivalent", "killed_after_run"):
        entries = report.get(key, [])
        report[key] = [e for e in entries if e["mutant"] in survivors or not e["mutant"].startswith(prefixes)]
    equivalent = {e["mutant"] for e in report.get("equivalent", [])} & survivors
    later = {e["mutant"] for e in report.get("killed_after_run", [])} & survivors
    total = lambda key: sum(m.get(key, 0) for m in done)  # noqa: E731
    killed = total("killed") + total("segfault")  # a crash the tests see is a kill
    # survivors whose names were lost (a run cut short) count as survived, unexplained
    survived = len(survivors - equivalent - later) + report.get("core_survivors_unnamed", 0)
    report.update(
        killed=killed,
        killed_after_run_count=len(later),
        survived=survived,
        equivalent_count=len(equivalent),
        timeout=total("timeout"),
        suspicious=total("suspicious"),
        not_checked=total("not_checked"),
        commit=sorted({m["commit"] for m in done}),
        covered=[m["module"] for m in done if not m.get("not_checked")],
        partly_covered=[m["module"] for m in done if m.get("not_checked")],
        not_covered=[f"neuroloop_gpu/{m}" for m in MODULES if f"neuroloop_gpu/{m}" not in [d["module"] for d in done]],
        killed_fraction_of_non_equivalent=round((killed + len(later)) / max(1, killed + len(later) + survived), 4),
    )
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
