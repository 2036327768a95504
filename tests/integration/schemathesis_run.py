"""Runs the schemathesis CLI against a live OpenAPI document and reads its JSON report.

The CLI runs in a subprocess rather than through its pytest integration: it runs every phase
(the schema's examples, boundary and negative "coverage" cases, random fuzzing, stateful
sequences), and Hypothesis stays out of this pytest process (its deadlines, its example
database, the suite's warnings-as-errors). One worker: several threads in CPython 3.11 can
break Hypothesis's source parsing ("AST constructor recursion depth mismatch")."""

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Fuzzed:
    report: dict
    output: str  # the CLI's last words, for assertion messages (the seed is in them)
    returncode: int

    def assert_clean(self, min_operations: int, min_cases: int) -> None:
        """Every operation tested, enough cases generated, no failure and no error."""
        operations = self.report["operations"]
        assert self.report["complete"], self.output
        assert operations["tested"] == operations["total"] >= min_operations, self.output
        assert self.report["test_cases"]["generated"] > min_cases, self.output
        server_errors = [f for f in self.report["failures"] if f["code"] == "ST101"]
        assert server_errors == [], self.output
        assert self.report["failures"] == [] and self.report["errors"] == [], self.output
        assert self.returncode == 0, self.output


def fuzz(document_url: str, token: str, checks: list[str], max_examples: int,
         workdir: Path, timeout_s: float) -> Fuzzed:
    """One run; a schemathesis.toml in workdir configures it, if there is one."""
    report_path = workdir / "report.json"
    command = [sys.executable, "-m", "schemathesis.cli", "run", document_url,
               "--header", f"Authorization: Bearer {token}",
               "--checks", ",".join(checks), "--max-examples", str(max_examples),
               "--workers", "1", "--request-timeout", "30", "--generation-database", "none",
               "--report", "json", "--report-json-path", str(report_path), "--no-color"]
    finished = subprocess.run(command, cwd=workdir, capture_output=True, text=True,
                              timeout=timeout_s)
    output = finished.stdout[-20000:] + finished.stderr[-5000:]
    assert report_path.exists(), output
    return Fuzzed(json.loads(report_path.read_text()), output, finished.returncode)
