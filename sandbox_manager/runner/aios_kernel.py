"""The live interpreter of a session sandbox. Every exec's Python code runs in one
namespace that lives as long as this process, as in a Jupyter kernel: variables, imports
and open figures carry over, and the value of a last bare expression comes back as text
(Jupyter's execute_result). Started by the supervisor, which reads our stdout and stderr as
the exec's output and kills us on a timeout; requests arrive as JSON lines on fd 3, and
one reply per request leaves on fd 4 once the output is flushed."""

import ast
import builtins
import io
import json
import linecache
import os
import sys
import traceback
import types

REQUESTS, REPLIES = 3, 4


def reap_children():
    """Zombies of processes the supervisor killed after the previous exec."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def exit_code_of(exc):
    """What `sys.exit(x)` means in a script: the interpreter itself carries on."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def run(code, filename, namespace, max_result_chars):
    """Run one exec; returns (exit_code, the last expression's repr or None)."""
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    try:
        tree = ast.parse(code, filename)
    except SyntaxError:
        traceback.print_exception(*sys.exc_info()[:2], None, limit=0)
        return 1, None
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    try:
        exec(compile(tree, filename, "exec"), namespace)
        if last is None:
            return 0, None
        value = eval(compile(ast.Expression(last.value), filename, "eval"), namespace)
        if value is None:
            return 0, None
        namespace["_"] = value
        return 0, repr(value)[:max_result_chars]
    except SystemExit as exc:
        return exit_code_of(exc), None
    except BaseException as exc:  # noqa: BLE001 - user code: report it as Python would
        # Our own frame first in the traceback is noise to the user.
        traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next)
        return 1, None


def save_figures():
    figures = sys.modules.get("aios_figures")
    if figures is not None:
        try:
            figures.save_changed()
        except Exception:  # noqa: BLE001 - a figure that cannot be drawn is the user's error
            traceback.print_exc()


def serve(requests, replies, namespace):
    for number, line in enumerate(requests, 1):
        request = json.loads(line)
        reap_children()
        os.environ["AIOS_MAX_OUTPUTS"] = str(request.get("max_outputs", 32))
        sys.stdin = io.StringIO(request.get("stdin", ""))
        exit_code, value = run(request["code"], f"<exec {number}>", namespace,
                               request.get("max_result_chars", 65536))
        save_figures()
        sys.stdout.flush()
        sys.stderr.flush()
        replies.write(json.dumps({"exit_code": exit_code, "execute_result": value}) + "\n")
        replies.flush()


def main():
    for fd in (REQUESTS, REPLIES):
        os.set_inheritable(fd, False)  # not for the exec's own subprocesses
    main_module = types.ModuleType("__main__")  # so pickle finds what an exec defines
    main_module.__builtins__ = builtins
    sys.modules["aios_kernel"] = sys.modules["__main__"]  # ours stays alive under its name
    sys.modules["__main__"] = main_module
    sys.path[0] = ""  # the working directory, as in an interactive interpreter
    sys.argv = [""]
    with open(REQUESTS, "r", encoding="utf-8") as requests, \
            open(REPLIES, "w", encoding="utf-8") as replies:
        serve(requests, replies, main_module.__dict__)


if __name__ == "__main__":
    main()
