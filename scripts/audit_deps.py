"""Dependency audit for CI: pip-audit over the installed virtualenv (exactly what runs).

    .venv/bin/python -m pip install pip-audit==2.10.1 && .venv/bin/python -m scripts.audit_deps

Fails (exit 1) when any installed package has a known vulnerability. pip-audit needs an advisory service
on the network: PyPI's JSON API (default) or, with AUDIT_SERVICES=pypi,osv, also OSV. When none can be
reached from this machine — every package comes back "could not be audited", or the service does not
resolve — it says so loudly and exits 0, because "could not look" is not "vulnerable"; the audit then
has to run somewhere that can reach them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def audit(service: str) -> tuple[dict | None, str]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip_audit",
            "--format",
            "json",
            "--progress-spinner",
            "off",
            "--skip-editable",
            "--vulnerability-service",
            service,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    try:
        return json.loads(result.stdout), result.stderr
    except ValueError:
        return None, result.stderr or result.stdout


def main() -> int:
    # PyPI's service goes through the package registry this machine is allowed to reach; OSV is another
    # host, so it is opt-in (AUDIT_SERVICES=pypi,osv where that host is reachable and permitted).
    for service in os.environ.get("AUDIT_SERVICES", "pypi").split(","):
        report, errors = audit(service)
        if report is None:
            print(f"pip-audit ({service}): no report: {errors.strip().splitlines()[-1:] or ['?']}", file=sys.stderr)
            continue
        dependencies = report.get("dependencies", [])
        audited = [d for d in dependencies if "skip_reason" not in d]
        vulnerable = [d for d in audited if d.get("vulns")]
        if vulnerable:
            print(f"pip-audit ({service}): KNOWN VULNERABILITIES:")
            for dep in vulnerable:
                for vuln in dep["vulns"]:
                    fixes = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
                    print(f"  {dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixes})")
            return 1
        if audited:
            print(
                f"pip-audit ({service}): no known vulnerabilities in {len(audited)} packages "
                f"({len(dependencies) - len(audited)} could not be audited)"
            )
            return 0
        print(
            f"pip-audit ({service}): none of {len(dependencies)} packages could be audited "
            "(the advisory service is not reachable from this machine)",
            file=sys.stderr,
        )
    print(
        "WARNING: dependency audit NOT performed: no advisory service reachable (PyPI JSON API, OSV). "
        "Run `python -m scripts.audit_deps` where one is.",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
