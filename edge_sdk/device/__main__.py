"""`python3 -m edge_device <command> ...`: the one entry point of the device side.

Commands (run from the bundle directory, or with the package's parent on the path):
  bench    time the bundle's model (JSON-lines events; see bench.py)
  predict  run the bundle's model on given text or arrays (see predict.py)
  generate continue a prompt with a decoder bundle, greedy (see generate.py)
  release  OP  stage/activate/rollback/verify/status/hash releases, memory (what a model may use now):
           JSON in on stdin, one JSON line out (release.py);
           `release hold` keeps the deploy lock and serves operations line by line (deploylock.py)
  kill     PID [GRACE_S]  stop a process, its session/group and all descendants (kill.py)
  probe    [WORKDIR]  facts about this machine as one JSON object (probe.py)
  calibrate --suite DIR  time the calibration kernels the host made (JSON-lines events; calibrate.py)
Exit codes: errors.py.
"""

import argparse
import sys
import traceback

from .errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, DeviceError
from .events import emit_final

COMMANDS = ("bench", "predict", "generate", "release", "kill", "probe", "calibrate")
RELEASE_OPS = ("hash", "prepare", "activate", "rollback", "verify", "status", "memory", "hold")


class _Parser(argparse.ArgumentParser):
    """Bad arguments end in exit 2: as one JSON error event for commands that speak events (bench), else as one
    line on stderr."""

    def __init__(self, *args, **kwargs):
        self.json_errors = kwargs.pop("json_errors", False)
        argparse.ArgumentParser.__init__(self, *args, **kwargs)

    def error(self, message):
        if self.json_errors:
            emit_final("error", message="bad arguments: %s" % message, code=EXIT_BAD_INPUT)
        else:
            sys.stderr.write("%s: error: %s\n" % (self.prog, message))
        sys.exit(EXIT_BAD_INPUT)


def parser():
    from . import bench, calibrate, generate, predict

    p = _Parser(prog="edge_device", description="The device side of an edge-sdk bundle.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    bench.add_arguments(sub.add_parser("bench", json_errors=True, help="benchmark the bundle's model",
                                       description="Benchmark the model of an edge-sdk bundle on this device."))
    predict.add_arguments(sub.add_parser("predict", help="run the bundle's model on text or arrays"))
    generate.add_arguments(sub.add_parser("generate", help="continue a prompt with a decoder bundle"))
    r = sub.add_parser("release", help="release operations (JSON on stdin)")
    r.add_argument("op", choices=RELEASE_OPS)
    k = sub.add_parser("kill", help="stop a process tree")
    k.add_argument("pid", type=int)
    k.add_argument("grace_s", type=float, nargs="?", default=2.0)
    calibrate.add_arguments(sub.add_parser("calibrate", json_errors=True, help="time calibration kernels",
                                           description="Time the calibration kernels of a suite directory."))
    pr = sub.add_parser("probe", help="facts about this machine")
    pr.add_argument("workdir", nargs="?", default=".")
    return p


def _bench(args, work=None):
    """Run the benchmark (or `work`, e.g. calibrate.run) with its deadline; the result or the error is the last
    stdout line."""
    from . import bench
    from .watchdog import Watchdog, end_children

    work = work or bench.run

    watchdog = Watchdog(args.deadline_s) if args.deadline_s else None
    code = 0
    try:
        emit_final("result", **work(args))
    except DeviceError as exc:
        code = exc.code
        emit_final("error", message=str(exc), code=code)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
        emit_final("error", message="interrupted", code=code)
    except Exception as exc:  # a runtime failing mid-run: say what, keep the traceback on stderr
        traceback.print_exc()
        code = EXIT_FAILED
        emit_final("error", message="%s: %s" % (type(exc).__name__, exc), code=code)
    finally:
        if watchdog is not None:
            watchdog.cancel()
        end_children()
    return code


def _predict(args):
    from . import predict

    try:
        return predict.run(args)
    except DeviceError as exc:
        sys.stderr.write("edge_device predict: error: %s\n" % exc)
        return exc.code


def main(argv=None):
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "bench":
        return _bench(args)
    if args.command == "predict":
        return _predict(args)
    if args.command == "generate":
        from . import generate

        return generate.run(args)
    if args.command == "calibrate":
        from . import calibrate

        return _bench(args, calibrate.run)
    if args.command == "release":
        from . import release

        return release.run(args.op)
    if args.command == "kill":
        from .kill import kill_tree

        sys.stdout.write("%d\n" % kill_tree(args.pid, args.grace_s))
        return 0
    from .probe import probe
    import json

    sys.stdout.write(json.dumps(probe(args.workdir)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
