"""What the doctor found and what it means: findings, the verdict per operation, the reports.

A `Finding` names the file a check read, what that means, the operations it affects (the words of
`ops`) and how to fix it. `Support` combines them: an operation is blocked only on certain
evidence; when the evidence is missing it is unknown. The checks that make findings are in doctor.py.
"""

from __future__ import annotations

from . import ops
from .errors import UsageError

OK, INFO, SIGNED, UNKNOWN, BLOCKED = "ok", "info", "signed-only", "unknown", "blocked"
# How good a state is for the user, best first: "auto" mode gets the better of the two syscalls.
_RANK = {OK: 0, SIGNED: 1, UNKNOWN: 2, BLOCKED: 3}


class Finding:
    """One check's result: what was read, what it means, what it blocks and the fix."""

    FIELDS = ("check", "status", "evidence", "meaning", "affects", "fix", "commands")  # in the JSON, in this order
    __slots__ = ("affects", "check", "commands", "evidence", "fix", "meaning", "status")

    def __init__(
        self,
        check: str,
        status: str,
        evidence: str,
        meaning: str,
        affects: tuple = (),
        fix: str = "",
        commands: tuple = (),
    ) -> None:
        self.check, self.status, self.evidence, self.meaning = check, status, evidence, meaning
        self.affects, self.fix, self.commands = affects, fix, commands

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.FIELDS}

    def __repr__(self) -> str:
        return f"Finding({self.check!r}, {self.status!r}, {self.evidence!r})"


class Support:
    """Everything the doctor found, and what it means for a load, a panic load and an exec."""

    __slots__ = ("findings", "program", "program_source", "root")

    def __init__(self, root: str, program: str | None, program_source: str | None, findings: tuple = ()) -> None:
        self.root, self.program, self.program_source, self.findings = root, program, program_source, findings

    def state(self, action: str = ops.LOAD, syscall: str = ops.AUTO) -> str:
        """ok, signed-only (only a signed kernel loads), unknown or blocked."""
        check_operation(action, syscall)
        if action == ops.EXEC:
            return self._state_of(ops.EXEC)
        states = [self._state_of(name) for name in ops.chosen(syscall)]
        best = min(states, key=_RANK.__getitem__)
        if action == ops.PANIC:
            best = max(best, self._state_of(ops.PANIC), key=_RANK.__getitem__)
        return best

    @property
    def verdict(self) -> str:
        """The state of an ordinary load, kexec-tools' default (either syscall)."""
        return self.state(ops.LOAD)

    def blockers(self, action: str = ops.LOAD, syscall: str = ops.AUTO) -> list:
        """The findings that make `action` blocked (or unknown, or signed-only), worst first."""
        check_operation(action, syscall)
        names = (ops.EXEC,) if action == ops.EXEC else ops.chosen(syscall)
        if action == ops.PANIC:
            names = (*names, ops.PANIC)
        found = [f for f in self.findings if f.status in (BLOCKED, UNKNOWN, SIGNED) and set(f.affects) & set(names)]
        return sorted(found, key=lambda f: -_RANK[f.status])

    def _state_of(self, name: str) -> str:
        statuses = [f.status for f in self.findings if name in f.affects and f.status in _RANK]
        return max(statuses, key=_RANK.__getitem__, default=OK)

    def to_json(self) -> str:
        """The report for machines: verdict, per-operation states, program and every finding."""
        import json

        document = {
            "verdict": self.verdict,
            ops.EXEC: self.state(ops.EXEC),
            "operations": {
                action: {syscall: self.state(action, syscall) for syscall in (ops.AUTO, *ops.SYSCALLS)}
                for action in (ops.LOAD, ops.PANIC)
            },
            "root": self.root,
            "program": {"path": self.program, "source": self.program_source},
            "findings": [finding.as_dict() for finding in self.findings],
        }
        return json.dumps(document, indent=2)

    def to_text(self) -> str:
        """The report for people: one block per check, then one verdict line."""
        lines = [f"kexec-bin doctor: can this machine load a kernel with kexec? (root {self.root})", ""]
        given: set = set()
        for finding in self.findings:
            lines.append(f"{finding.status.upper():<12} {finding.check}: {finding.meaning}")
            lines.append(f"{'':<12} read: {finding.evidence}")
            if finding.status != OK:
                lines += _fix_lines(finding, given, f"{'':<12} ")
        lines += ["", f"verdict: {_VERDICTS[self.verdict]}"]
        return "\n".join(lines)


def check_operation(action: str, syscall: str) -> None:
    """Refuse an (action, syscall) outside the vocabulary of `ops` before it reads as "ok"."""
    if action not in ops.ACTIONS or (syscall != ops.AUTO and syscall not in ops.SYSCALLS):
        raise UsageError(
            f"operation ({action!r}, {syscall!r}): the action is one of {', '.join(ops.ACTIONS)}, "
            f"the syscall one of {ops.AUTO}, {', '.join(ops.SYSCALLS)}"
        )


_VERDICTS = {
    OK: "ok: kexec can load a kernel here",
    SIGNED: "ok for signed kernels only: load a kernel signed by a trusted key, with kexec -s",
    UNKNOWN: "unknown: the kernel does not publish enough to tell; kexec itself will say (try it)",
    BLOCKED: "blocked: kexec cannot load a kernel here (see the BLOCKED checks and their fixes)",
}


def _fix_lines(finding: Finding, given: set, indent: str) -> list:
    """The finding's fix and its commands, unless the same fix was given already (`given` remembers)."""
    if not finding.fix or finding.fix in given:
        return []
    given.add(finding.fix)
    return [f"{indent}fix: {finding.fix}", *(f"{indent}  $ {command}" for command in finding.commands)]


def explain(result: Support, action: str = ops.LOAD, syscall: str = ops.AUTO) -> str:
    """Why `action` cannot happen, with each blocker's evidence and fix, in a few lines."""
    what = {ops.LOAD: "load a kernel", ops.PANIC: "load a crash kernel", ops.EXEC: "boot the loaded kernel"}[action]
    via = "" if syscall == ops.AUTO or action == ops.EXEC else f" with {syscall}"
    lines = [f"the kernel will refuse to {what}{via}:"]
    given: set = set()
    for finding in result.blockers(action, syscall):
        if finding.status != BLOCKED:
            continue
        lines.append(f"  - {finding.meaning} ({finding.evidence})")
        lines += _fix_lines(finding, given, "    ")
    lines.append("  run `kexec-bin doctor` for the full report; KEXEC_BIN_NO_CHECK=1 skips this check")
    return "\n".join(lines)
