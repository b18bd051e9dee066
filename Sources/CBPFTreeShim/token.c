/* BPF tokens (Linux 6.9): creating one from a delegated bpffs, and handing it to every map creation,
 * program load and BTF load of this process, libbpf's included.
 *
 * Debian's libbpf 1.1 predates tokens: it neither passes one nor can be told to. It reaches the kernel
 * through libc's syscall(2), so this file defines syscall() itself (the executable's definition
 * interposes the one libbpf.so would bind to) and, while a token is active, rewrites the attr of
 * BPF_MAP_CREATE, BPF_PROG_LOAD and BPF_BTF_LOAD into a larger zeroed copy that carries the token fd and
 * BPF_F_TOKEN_FD. Every other call, and every call while no token is active, goes to libc's syscall
 * untouched. libbpf's feature probes pass through here as well, so they see what the token grants. */
#define _GNU_SOURCE
#include "shim_token.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/bpf.h>

#define BT_BPF_TOKEN_CREATE 36
#define BT_BPF_F_TOKEN_FD (1U << 16)

/* Where the 6.9 uapi puts the token fd and its flag (the 6.1 headers here lack both). */
struct bt_token_field {
	uint32_t flags_offset;
	uint32_t fd_offset;
};

static int token_field(long cmd, struct bt_token_field *field)
{
	switch (cmd) {
	case BPF_MAP_CREATE: /* map_flags, map_token_fd */
		*field = (struct bt_token_field){ 16, 76 };
		return 1;
	case BPF_PROG_LOAD: /* prog_flags, prog_token_fd */
		*field = (struct bt_token_field){ 44, 144 };
		return 1;
	case BPF_BTF_LOAD: /* btf_flags, btf_token_fd */
		*field = (struct bt_token_field){ 32, 36 };
		return 1;
	default:
		return 0;
	}
}

static _Atomic int active_token = -1;

typedef long (*bt_syscall_fn)(long, ...);

static bt_syscall_fn libc_syscall(void)
{
	static _Atomic(bt_syscall_fn) resolved;
	bt_syscall_fn fn = atomic_load_explicit(&resolved, memory_order_acquire);

	if (!fn) {
		fn = (bt_syscall_fn)dlsym(RTLD_NEXT, "syscall");
		atomic_store_explicit(&resolved, fn, memory_order_release);
	}
	return fn;
}

/* bpf(cmd, attr, size) with the token added; the caller's attr stays as it was. */
static long bpf_with_token(long cmd, const void *attr, unsigned long size, int token)
{
	struct bt_token_field field;
	unsigned char copy[256] = { 0 };
	unsigned long length = size;
	uint32_t flags;
	int32_t fd = token;

	if (!token_field(cmd, &field) || !attr || size > sizeof(copy))
		return libc_syscall()(SYS_bpf, cmd, attr, size);
	memcpy(copy, attr, size);
	if (length < field.fd_offset + sizeof(fd))
		length = field.fd_offset + sizeof(fd);
	memcpy(&flags, copy + field.flags_offset, sizeof(flags));
	flags |= BT_BPF_F_TOKEN_FD;
	memcpy(copy + field.flags_offset, &flags, sizeof(flags));
	memcpy(copy + field.fd_offset, &fd, sizeof(fd));
	return libc_syscall()(SYS_bpf, cmd, copy, length);
}

long syscall(long number, ...)
{
	va_list args;
	long a[6];
	bt_syscall_fn fn = libc_syscall();
	int token;

	/* syscall(2) takes up to six arguments; reading all six is what libc's own does with its registers. */
	va_start(args, number);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(args, long);
	va_end(args);
	if (!fn) {
		errno = ENOSYS;
		return -1;
	}
	token = atomic_load_explicit(&active_token, memory_order_relaxed);
	if (number == SYS_bpf && token >= 0)
		return bpf_with_token(a[0], (const void *)a[1], (unsigned long)a[2], token);
	return fn(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

void bt_token_activate(int fd)
{
	atomic_store(&active_token, fd);
}

int bt_token_active(void)
{
	return atomic_load(&active_token);
}

int bt_token_create(int bpffs_root)
{
	struct {
		uint32_t flags;
		uint32_t bpffs_fd;
	} attr = { 0, (uint32_t)bpffs_root };
	long ret = libc_syscall()(SYS_bpf, BT_BPF_TOKEN_CREATE, &attr, sizeof(attr));

	return ret < 0 ? -errno : (int)ret;
}

/* The mount id and inode of fd (statx). */
static int where(int fd, uint64_t *mount, uint64_t *inode)
{
	struct statx st;

	if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID | STATX_INO, &st) < 0)
		return -errno;
	if (!(st.stx_mask & STATX_MNT_ID))
		return -EOPNOTSUPP;
	*mount = st.stx_mnt_id;
	*inode = st.stx_ino;
	return 0;
}

int bt_mount_id(int fd, uint64_t *id)
{
	uint64_t inode;

	return where(fd, id, &inode);
}

int bt_mount_root_open(int dirfd)
{
	uint64_t mount, inode, up_mount, up_inode;
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int err;

	if (fd < 0)
		return -errno;
	for (;;) {
		int up;

		err = where(fd, &mount, &inode);
		if (err < 0)
			break;
		up = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (up < 0) {
			err = -errno;
			break;
		}
		err = where(up, &up_mount, &up_inode);
		if (err < 0 || up_mount != mount || up_inode == inode) {
			/* ".." left the mount, or stayed put (a root): fd is the mount's root. */
			close(up);
			if (err < 0)
				break;
			return fd;
		}
		close(fd);
		fd = up;
	}
	close(fd);
	return err;
}
