/* What links attach to outside the bpffs, opened so that nothing redirects them: cgroup v2 directories
 * and network namespace files. */
#define _GNU_SOURCE
#include "shim_targets.h"
#include "shim_fs.h"
#include "shim_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>
#include <linux/nsfs.h>

int bt_cgroup_open(const char *path, uint64_t *id)
{
	struct stat st;
	/* RESOLVE_NO_SYMLINKS (0x04): no symlink anywhere on the way, not only at its end, redirects a link. */
	int fd = bt_openat2(AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0x04);

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		int error = errno;

		close(fd);
		return -error;
	}
	*id = st.st_ino;
	return fd;
}

int bt_netns_open(const char *path, uint64_t *inode)
{
	struct statfs fs;
	struct stat st;
	char proc[64];
	/* Opened O_PATH first, which opens nothing: a FIFO or a device given as a namespace must be refused,
	 * not block or act. Only an nsfs file is then opened for real, through its own descriptor. */
	int fd = open(path, O_PATH | O_CLOEXEC), file;

	if (fd < 0)
		return -errno;
	if (fstatfs(fd, &fs) < 0) {
		int error = errno;

		close(fd);
		return -error;
	}
	if (fs.f_type != NSFS_MAGIC) {
		close(fd);
		return -ENOTTY;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	file = open(proc, O_RDONLY | O_CLOEXEC);
	close(fd);
	if (file < 0)
		return -errno;
	fd = file;
	if (fstat(fd, &st) < 0) {
		int error = errno;

		close(fd);
		return -error;
	}
	if (ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNET) {
		close(fd);
		return -EINVAL;
	}
	*inode = st.st_ino;
	return fd;
}
