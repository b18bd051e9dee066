/* File system calls Swift cannot make directly: getdents64, openat2 with RESOLVE_* flags, renameat2, fchmodat2 (with its fallback), fstatfs, and process limits. */
#define _GNU_SOURCE
#include "shim_fs.h"
#include "shim_internal.h"
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <malloc.h>
#include <limits.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/bpf.h>

const char *bt_errno_name(int error)
{
	return strerrorname_np(error);
}

int bt_getdents(int fd, void *buffer, size_t size)
{
	long ret;

	do
		ret = syscall(SYS_getdents64, fd, buffer, size);
	while (ret < 0 && errno == EINTR);
	return neg_errno(ret);
}

struct bt_open_how {
	uint64_t flags;
	uint64_t mode;
	uint64_t resolve;
};

int bt_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve)
{
	struct bt_open_how how = { .flags = flags, .mode = mode, .resolve = resolve };
	long ret;

	do
		ret = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	while (ret < 0 && errno == EINTR);
	return neg_errno(ret);
}

int bt_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags)
{
	return neg_errno(syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags));
}

/* chmod through /proc/self/fd of an O_PATH descriptor of the entry itself (never a lookup of its name
 * by path, never following a symlink): for seccomp profiles older than Linux 6.6 that answer fchmodat2
 * with ENOSYS or EPERM (podman's and Docker's defaults). */
static int bt_chmod_by_descriptor(int dirfd, const char *path, uint32_t mode, int flags)
{
	char proc[64];
	struct stat st;
	int fd, ret;

	if ((flags & BT_AT_EMPTY_PATH) && path[0] == '\0')
		fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	else
		fd = openat(dirfd, path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
	} else if (S_ISLNK(st.st_mode)) {
		ret = -ELOOP;
	} else {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		ret = chmod(proc, mode) < 0 ? -errno : 0;
	}
	close(fd);
	return ret;
}

int bt_fchmodat2(int dirfd, const char *path, uint32_t mode, int flags)
{
	int ret = neg_errno(syscall(SYS_fchmodat2, dirfd, path, mode, flags));

	if (ret == -ENOSYS || ret == -EPERM)
		return bt_chmod_by_descriptor(dirfd, path, mode, flags);
	return ret;
}

int bt_fstatfs_type(int fd, int64_t *type)
{
	struct statfs st;

	if (fstatfs(fd, &st) < 0)
		return -errno;
	*type = (int64_t)st.f_type;
	return 0;
}

long bt_raise_nofile_limit(void)
{
	struct rlimit limit;

	if (getrlimit(RLIMIT_NOFILE, &limit) < 0)
		return -errno;
	if (limit.rlim_cur < limit.rlim_max) {
		limit.rlim_cur = limit.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &limit) < 0)
			getrlimit(RLIMIT_NOFILE, &limit);
	}
	return limit.rlim_cur > (rlim_t)LONG_MAX ? LONG_MAX : (long)limit.rlim_cur;
}

int bt_num_possible_cpus(void)
{
	return libbpf_num_possible_cpus();
}

void bt_release_free_memory(void)
{
	malloc_trim(0);
}
