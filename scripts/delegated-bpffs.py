#!/usr/bin/env python3
"""Runs a command as root of a new user namespace on a bpffs delegated to it (BPF token, Linux >= 6.9).

This is the privileged parent side of a delegated bpffs, as a container runtime does it; a test and demo
helper, not part of bpftree:

  1. the child (uid 65534 on the host, so no capability there) unshares a user and a mount namespace;
  2. the parent (root) maps root of that namespace to host uids 100000..165535;
  3. the child calls fsopen("bpf") and passes the fs-context fd to the parent (SCM_RIGHTS);
  4. the parent sets the delegate_* options, runs FSCONFIG_CMD_CREATE and fsmount, and passes the mount
     fd back: only a parent with CAP_SYS_ADMIN in the initial namespace may set delegate_* options;
  5. the child moves the mount to MOUNTPOINT (in its own mount namespace) and runs COMMAND there.

  delegated-bpffs.py [--cmds C] [--maps M] [--progs P] [--attachs A] [--hold] MOUNTPOINT -- COMMAND...

Each option takes "any" (the default) or names joined by ':' (e.g. --maps array:hash); "none" leaves the
option unset. The helper prints "ready PID" once the command can start (PID: the child, whose
/proc/PID/root shows its mounts to root on the host) and "exit STATUS" when it ended; with --hold it then
waits for its standard input to close before the namespace goes. It exits with the command's status.
"""
import argparse
import ctypes
import os
import socket
import sys

SYS_MOVE_MOUNT, SYS_FSOPEN, SYS_FSCONFIG, SYS_FSMOUNT = 429, 430, 431, 432
FSCONFIG_SET_STRING, FSCONFIG_CMD_CREATE = 1, 6
MOVE_MOUNT_F_EMPTY_PATH = 4
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
AT_FDCWD = -100
HOST_BASE = 100000

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def check(result, what):
    if result < 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")
    return result


def syscall(number, *args):
    return libc.syscall(ctypes.c_long(number), *args)


def parent_mount(context_fd, options):
    """Sets the delegate_* options on the child's fs context and returns a mount fd."""
    for key, value in options.items():
        check(syscall(SYS_FSCONFIG, context_fd, FSCONFIG_SET_STRING, key.encode(), value.encode(), 0),
              f"fsconfig {key}={value}")
    check(syscall(SYS_FSCONFIG, context_fd, FSCONFIG_CMD_CREATE, None, None, 0), "fsconfig create")
    return check(syscall(SYS_FSMOUNT, context_fd, 0, 0), "fsmount")


def child(sock, mountpoint, command):
    os.setgroups([])
    os.setresgid(65534, 65534, 65534)
    os.setresuid(65534, 65534, 65534)
    check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare")
    sock.send(b"unshared")
    if sock.recv(16) != b"mapped":
        sys.exit(1)
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    # Private propagation, so nothing mounted here reaches the host.
    check(libc.mount(b"none", b"/", None, ctypes.c_ulong(1 << 14 | 1 << 18), None), "make / private")
    context = check(syscall(SYS_FSOPEN, b"bpf", 0), "fsopen bpf")
    socket.send_fds(sock, [b"context"], [context])
    _, fds, _, _ = socket.recv_fds(sock, 16, 1)
    if not fds:
        sys.exit(1)
    check(syscall(SYS_MOVE_MOUNT, fds[0], b"", AT_FDCWD, mountpoint.encode(), MOVE_MOUNT_F_EMPTY_PATH), "move_mount")
    os.close(fds[0])
    os.close(context)
    print(f"ready {os.getpid()}", flush=True)
    status = os.spawnvp(os.P_WAIT, command[0], command)
    return status if status >= 0 else 128 - status


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name in ("cmds", "maps", "progs", "attachs"):
        parser.add_argument(f"--{name}", default="any", help=f"delegate_{name}: any, none, or names joined by ':'")
    parser.add_argument("--hold", action="store_true", help="keep the namespace until standard input closes")
    parser.add_argument("mountpoint")
    parser.add_argument("command", nargs="+")
    args = parser.parse_args()
    options = {f"delegate_{name}": getattr(args, name) for name in ("cmds", "maps", "progs", "attachs")
               if getattr(args, name) != "none"}
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        ours.close()
        try:
            status = child(theirs, os.path.abspath(args.mountpoint), args.command)
        except OSError as error:
            print(f"delegated-bpffs: {error}", file=sys.stderr, flush=True)
            os._exit(125)
        print(f"exit {status}", flush=True)
        if args.hold:
            sys.stdin.read()
        os._exit(status)
    theirs.close()
    try:
        if ours.recv(16) != b"unshared":
            raise OSError(0, "the child did not unshare")
        for name, text in (("uid_map", f"0 {HOST_BASE} 65536\n"), ("setgroups", "deny"),
                           ("gid_map", f"0 {HOST_BASE} 65536\n")):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(text)
        ours.send(b"mapped")
        _, fds, _, _ = socket.recv_fds(ours, 16, 1)
        if not fds:
            raise OSError(0, "the child sent no fs context")
        mount = parent_mount(fds[0], options)
        socket.send_fds(ours, [b"mount"], [mount])
        os.close(mount)
        os.close(fds[0])
    except OSError as error:
        print(f"delegated-bpffs: {error}", file=sys.stderr, flush=True)
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        sys.exit(125)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
