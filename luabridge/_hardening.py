"""What a worker process does to itself, once set up, so that code that took it over could do little.

Each step uses what Linux offers an unprivileged process and is skipped, and reported, where it is not
available (``harden`` returns what held, for the host's log and ``docs/sandbox.md``):

- resource limits: no core dumps, no new processes, no files written past a size, few descriptors, and
  an address-space limit set per run (:func:`limit_address_space`), a backstop for memory that Python
  allocates outside Lua's count;
- running as ``nobody`` when started as root, so the worker cannot read the host's memory or environment;
- ``PR_SET_NO_NEW_PRIVS``, and a seccomp filter (through libseccomp, when it is installed) that refuses
  sockets, program execution, new processes, opening files, tracing and signalling other processes.

The worker has loaded everything it needs before this runs, so none of it is needed afterwards.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
from typing import Any

MiB = 1024 * 1024
NOBODY = 65534
PR_SET_NO_NEW_PRIVS = 38
_CLONE_THREAD = 0x00010000
_TIOCSTI = 0x5412

# Refused with EPERM. Reading, writing and polling descriptors it already has, memory, time, futexes
# and threads stay allowed.
DENIED_SYSCALLS = (
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
    "execve", "execveat", "fork", "vfork",
    "open", "openat", "openat2", "creat", "open_by_handle_at", "name_to_handle_at",
    "mkdir", "mkdirat", "mknod", "mknodat", "unlink", "unlinkat", "rmdir", "rename", "renameat", "renameat2",
    "link", "linkat", "symlink", "symlinkat", "chmod", "fchmodat", "chown", "lchown", "fchownat",
    "truncate", "chdir", "chroot", "pivot_root", "mount", "umount2", "unshare", "setns",
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_open", "pidfd_getfd",
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "keyctl", "add_key", "request_key",
    "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups", "personality",
    "tkill",
)

_address_space_ceiling: int | None = None
_statm_fd: int | None = None


def harden(*, keep_fds: tuple[int, ...]) -> dict[str, Any]:
    """Apply every hardening step this system allows; return which held (name -> True or why not)."""
    global _statm_fd
    report: dict[str, Any] = {}
    try:
        _statm_fd = os.open("/proc/self/statm", os.O_RDONLY)  # read each run, after open is refused
    except OSError as exc:
        report["address_space"] = f"no /proc/self/statm ({exc.strerror})"
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    try:
        seccomp = ctypes.CDLL("libseccomp.so.2")
    except OSError:
        seccomp = None
    report["resource_limits"] = _step(_resource_limits, keep_fds)
    report["nobody"] = _step(_become_nobody) if os.geteuid() == 0 else "not root"
    report["no_new_privs"] = _step(_prctl, libc, PR_SET_NO_NEW_PRIVS, 1)
    report["seccomp"] = _step(_seccomp, seccomp) if seccomp is not None else "libseccomp is not installed"
    return report


def limit_address_space(memory: int) -> None:
    """Bound the process's address space for the next run: what it maps now, plus room for a run whose
    Lua memory limit is ``memory`` (its converted values and the Python objects behind them)."""
    if _statm_fd is None:
        return
    pages = int(os.pread(_statm_fd, 100, 0).split()[0])
    soft = pages * os.sysconf("SC_PAGE_SIZE") + 6 * memory + 256 * MiB
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    except (ValueError, OSError):
        pass  # a system that refuses it keeps the Lua limit, which always holds


def _step(action, *args) -> Any:
    try:
        action(*args)
    except (OSError, ValueError, AttributeError) as exc:
        return str(exc) or type(exc).__name__
    return True


def _resource_limits(keep_fds: tuple[int, ...]) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024 * MiB, 1024 * MiB))  # the events file, and no more
    highest = max(keep_fds + ((_statm_fd,) if _statm_fd is not None else ())) + 1
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest, highest))


def _become_nobody() -> None:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def _prctl(libc: ctypes.CDLL, option: int, value: int) -> None:
    if libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


_SCMP_ACT_ALLOW = 0x7FFF0000
_SCMP_CMP_NE, _SCMP_CMP_EQ, _SCMP_CMP_MASKED_EQ = 1, 4, 7


def _errno_action(code: int) -> int:
    return 0x00050000 | code


def _seccomp(lib: ctypes.CDLL) -> None:
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    ctx = lib.seccomp_init(_SCMP_ACT_ALLOW)
    if not ctx:
        raise OSError("seccomp_init failed")
    deny = _errno_action(errno.EPERM)
    try:
        def rule(action: int, syscall: str, *comparisons: _ArgCmp) -> None:
            number = lib.seccomp_syscall_resolve_name(syscall.encode())
            if number < 0:
                return  # not a system call on this architecture
            array = (_ArgCmp * len(comparisons))(*comparisons)
            result = lib.seccomp_rule_add_array(ctx, action, number, len(comparisons), array)
            if result != 0:
                raise OSError(-result, f"seccomp_rule_add({syscall}) failed")

        for syscall in DENIED_SYSCALLS:
            rule(deny, syscall)
        # New threads only: a clone without CLONE_THREAD is a new process. clone3 cannot be inspected,
        # so it says "not implemented" and the C library falls back to clone.
        rule(deny, "clone", _ArgCmp(0, _SCMP_CMP_MASKED_EQ, _CLONE_THREAD, 0))
        rule(_errno_action(errno.ENOSYS), "clone3")
        # Signals only to itself; no keystrokes pushed into a terminal.
        pid = os.getpid()
        rule(deny, "kill", _ArgCmp(0, _SCMP_CMP_NE, pid, 0))
        rule(deny, "tgkill", _ArgCmp(0, _SCMP_CMP_NE, pid, 0))
        rule(deny, "ioctl", _ArgCmp(1, _SCMP_CMP_EQ, _TIOCSTI, 0))
        if lib.seccomp_load(ctx) != 0:
            raise OSError("seccomp_load failed")
    finally:
        lib.seccomp_release(ctx)
