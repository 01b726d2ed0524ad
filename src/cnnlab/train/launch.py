"""``cnnlab train --nproc N``: the same command in N processes, started by PyTorch's own launcher.

The processes are started by ``torchrun``'s machinery (``torch.distributed.run``), exactly as
``torchrun --nproc-per-node N -m cnnlab train ...`` would start them; cnnlab has no launcher
of its own. On one node the rendezvous is torchrun's standalone one; with ``--nnodes`` it is
the c10d rendezvous at ``--rdzv-endpoint`` (run the same command on every node), with a time
limit, so that an endpoint nobody answers at is reported instead of waited for.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Callable

import torch

from ..errors import CnnlabError, first_line
from ..runs import LAST, checkpoint_tags
from .distributed import launched_by_torchrun, restart_count, usable_cores

# The options of `cnnlab train` that are the launcher's, not the workers'; each takes a value.
LAUNCH_OPTIONS = ("--nproc", "--nnodes", "--rdzv-endpoint", "--rdzv-timeout", "--max-restarts")


def check_nproc(nproc: int, device_name: str) -> None:
    """At most one process per GPU, or per CPU core: more would only make them wait for each other."""
    if nproc < 1:
        raise CnnlabError(f"--nproc must be at least 1, got {nproc}")
    if launched_by_torchrun():
        raise CnnlabError("this command already runs under torchrun; drop --nproc (torchrun's --nproc-per-node "
                          "says how many processes)")
    on_gpu = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    if on_gpu:
        count = torch.cuda.device_count()
        if nproc > count:
            raise CnnlabError(f"--nproc {nproc} asks for more processes than the {count} GPU(s) here (one GPU per "
                              f"process); use --nproc {count} or fewer, or --device cpu")
    elif nproc > usable_cores():
        cores = usable_cores()
        raise CnnlabError(f"--nproc {nproc} is more than the {cores} CPU core(s) this process may use (each process "
                          f"needs one at least); use --nproc {cores} or fewer")


def worker_argv(argv: list[str]) -> list[str]:
    """``argv`` without the launcher's options (``--nproc 2``, ``--nproc=2``, or an abbreviation
    argparse accepted), which is what every worker runs."""
    kept, skip = [], False
    for token in argv:
        if skip:
            skip = False
            continue
        name = token.split("=", 1)[0]
        if name.startswith("--") and len(name) > 2 and sum(option.startswith(name) for option in LAUNCH_OPTIONS) == 1:
            skip = "=" not in token
            continue
        kept.append(token)
    return kept


def launch(argv: list[str], nproc: int, *, nnodes: int = 1, rdzv_endpoint: str | None = None,
           rdzv_timeout: int = 120, max_restarts: int = 0) -> int:
    """Run ``python -m cnnlab ARGV`` in ``nproc`` processes on this node through ``torch.distributed.run``
    and return the exit status: 0, the status of the first process that failed, or 128 + the
    signal that stopped the launch (the workers have then saved and said how to resume)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous.api import RendezvousError, RendezvousTimeoutError
    from torch.distributed.run import parse_args, run

    if nnodes < 1:
        raise CnnlabError(f"--nnodes must be at least 1, got {nnodes}")
    if nnodes > 1 and not rdzv_endpoint:
        raise CnnlabError("--nnodes above 1 needs --rdzv-endpoint HOST:PORT, the same on every node (the first "
                          "node's address)")
    if rdzv_timeout < 1:
        raise CnnlabError(f"--rdzv-timeout must be at least 1 second, got {rdzv_timeout}")
    options = ["--nproc-per-node", str(nproc), "--max-restarts", str(max_restarts)]
    if rdzv_endpoint:
        options += ["--nnodes", str(nnodes), "--rdzv-backend", "c10d", "--rdzv-endpoint", rdzv_endpoint,
                    "--rdzv-id", "cnnlab", "--rdzv-conf", f"join_timeout={rdzv_timeout},read_timeout={rdzv_timeout}"]
    else:
        options += ["--standalone"]
    arguments = parse_args([*options, "-m", "cnnlab", *worker_argv(argv)])
    # torchrun would set one thread per process and warn; the trainer shares the cores out itself.
    environment = {"OMP_NUM_THREADS": str(max(1, usable_cores() // nproc))}
    saved_environment = {key: os.environ.get(key) for key in environment}
    # The elastic agent installs its own signal handlers (turning SIGTERM into an exception);
    # they are put back afterwards, for callers that go on (tests, notebooks).
    saved_handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    for key, value in environment.items():
        os.environ.setdefault(key, value)
    try:
        run(arguments)
    except ChildFailedError as error:
        rank, failure = error.get_first_failure()
        code = failure.exitcode
        if code < 0:
            print(f"error: process {rank} was killed by {signal.Signals(-code).name}"
                  + ("" if max_restarts else "; with --max-restarts N torchrun restarts the processes, which "
                     "continue from the last checkpoint"), flush=True)
            return 128 - code
        return code  # the process said why itself (a user error: status 2, its message above)
    except SignalException as error:
        return 128 + int(error.sigval)
    except RendezvousTimeoutError:
        raise CnnlabError(f"the rendezvous at {rdzv_endpoint} did not gather {nnodes} nodes within {rdzv_timeout} s; "
                          f"start the same command on every node, or allow longer with --rdzv-timeout") from None
    except (RendezvousError, torch.distributed.DistError, OSError) as error:
        raise CnnlabError(f"cannot reach the rendezvous endpoint {rdzv_endpoint} within {rdzv_timeout} s "
                          f"({first_line(error)}); check the host and port, that the first node has started, and "
                          "that no firewall blocks the port") from None
    finally:
        for number, handler in saved_handlers.items():
            signal.signal(number, handler)
        for key, value in saved_environment.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return 0


def restarted_run(out: str | None) -> tuple[bool, bool]:
    """After torchrun restarted the workers (``--max-restarts``): ``(resume, overwrite)`` for the run in
    ``--out``: continue it from its ``last`` checkpoint, or start it again when the processes
    died before the first one was saved. ``(False, False)`` on a first start."""
    if restart_count() == 0 or out is None:
        return False, False
    if LAST in checkpoint_tags(Path(out)):
        return True, False
    return False, True


def add_launch_options(parser) -> None:
    """``cnnlab train``'s options for data-parallel training (the launcher's, not the workers')."""
    group = parser.add_argument_group("data-parallel training (started by torchrun; see the README)")
    group.add_argument("--nproc", type=int, help="train in N processes on this node (one per GPU, or per CPU core); "
                                                 "--batch-size stays the global batch")
    group.add_argument("--nnodes", type=int, default=1, help="nodes taking part (default 1); run the same command "
                                                             "on each")
    group.add_argument("--rdzv-endpoint", dest="rdzv_endpoint", metavar="HOST:PORT",
                       help="the first node's address, for --nnodes above 1 (torchrun's c10d rendezvous)")
    group.add_argument("--rdzv-timeout", dest="rdzv_timeout", type=int, default=120, metavar="SECONDS",
                       help="how long to wait for the other nodes (default 120)")
    group.add_argument("--max-restarts", dest="max_restarts", type=int, default=0,
                       help="restart the processes this many times after a failure; they continue from the last "
                            "checkpoint (default 0)")


def train_command(args, overrides: dict, make_config: Callable[..., object], console) -> int:
    """``cnnlab train``: start N processes (``--nproc``), or be one process of a run (a whole run
    without torchrun): a new run from ``make_config(overrides)``, or ``--resume``; after a
    torchrun restart, the run in ``--out`` continued from its last checkpoint. Returns the exit
    status: 143 for a run stopped by SIGTERM (it has saved and said how to resume)."""
    from rich.markup import escape

    from ..runs import RUNTIME_KEYS
    from .interrupt import Preempted
    from .logger import is_main_process
    from .trainer import Trainer

    if args.tensorboard:
        overrides["tensorboard"] = True
    if args.nproc is not None:
        return _launch_train(args, overrides, make_config)
    resume, overwrite = restarted_run(args.out)  # torchrun restarted the processes: continue --out
    if resume:
        overrides = {key: value for key, value in overrides.items() if key in RUNTIME_KEYS}
        if is_main_process():
            console.print(f"torchrun restarted the processes: continuing {escape(args.out)} from its last "
                          "checkpoint", highlight=False)
    if args.resume or resume:
        if args.recipe and not resume:
            raise CnnlabError("--resume continues a run with the config it started with; drop --recipe")
        if args.out and args.resume and Path(args.out).resolve() != Path(args.resume).resolve():
            raise CnnlabError("--resume continues the run in its own directory; drop --out")
        trainer = Trainer.resume(args.resume or args.out, overrides=overrides, quiet=args.quiet, console=console)
    else:
        trainer = Trainer(make_config(overrides), args.out, overwrite=args.overwrite or overwrite, quiet=args.quiet,
                          console=console)
    try:
        trainer.fit()
    except Preempted:
        return 143  # what a shell reports for a job ended by SIGTERM
    except torch.distributed.DistError as error:  # another process of the run died or hung
        raise CnnlabError(f"lost the other processes of this run ({first_line(error)}); torchrun --max-restarts N "
                          "restarts them from the last checkpoint") from None
    return 0


def _launch_train(args, overrides: dict, make_config: Callable[..., object]) -> int:
    """``cnnlab train --nproc N ...``: checked here once, then run by N processes under torchrun."""
    from rich.console import Console

    from .distributed import check_batch_split
    from .run import default_out_dir

    argv = list(args.argv)
    config = None if args.resume else make_config(overrides, Console(quiet=True))  # workers say what they chose
    check_nproc(args.nproc, overrides.get("device") or (config.device if config else "auto"))
    if config is not None:
        check_batch_split(config.batch_size, args.nproc * args.nnodes, config.accumulate)
        if args.out is None:  # one folder for every process and every restart
            argv += ["--out", str(default_out_dir(config.recipe))]
    return launch(argv, args.nproc, nnodes=args.nnodes, rdzv_endpoint=args.rdzv_endpoint,
                  rdzv_timeout=args.rdzv_timeout, max_restarts=args.max_restarts)
