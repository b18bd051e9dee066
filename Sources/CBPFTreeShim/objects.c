/* BPF objects by their pins and ids: BPF_OBJ_PIN and BPF_OBJ_GET relative to a directory (BPF_F_PATH_FD), what kind of object an fd is, map info, and the programs of the system. */
#define _GNU_SOURCE
#include "shim_objects.h"
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
#include <linux/magic.h>

/* BPF_OBJ_PIN / BPF_OBJ_GET attr with path_fd: the 6.1 uapi headers on Debian 12 lack the field. */
struct bt_obj_attr {
	uint64_t pathname;
	uint32_t bpf_fd;
	uint32_t file_flags;
	int32_t path_fd;
	uint32_t pad;
};

/* 1 when BPF_OBJ_PIN takes BPF_F_PATH_FD (Linux 6.5), -1 when it does not, 0 before the probe. */
static int path_fd_state;

int bt_pin_path_fd_supported(void)
{
	int state = __atomic_load_n(&path_fd_state, __ATOMIC_RELAXED);

	if (state == 0) {
		/* The empty name: ENOENT from a kernel that knows the flag, EINVAL from one that does not. */
		struct bt_obj_attr attr = {
			.pathname = (uint64_t)(uintptr_t)"",
			.file_flags = BPF_F_PATH_FD,
			.path_fd = AT_FDCWD,
		};
		long ret = syscall(SYS_bpf, BPF_OBJ_GET, &attr, sizeof(attr));

		if (ret >= 0)
			close((int)ret);
		if (ret < 0 && errno == EPERM)
			return 1; /* bpf(2) refused to this caller at all: nothing learnt, the pin will say why */
		state = ret < 0 && errno == EINVAL ? -1 : 1;
		__atomic_store_n(&path_fd_state, state, __ATOMIC_RELAXED);
	}
	return state > 0;
}

/* The pin where BPF_F_PATH_FD is refused: through /proc/self/fd/N/NAME, where the magic link is the very
 * directory `dirfd` is open on (no path of it is looked up) and NAME one component that BPF_OBJ_PIN
 * creates, failing with EEXIST on anything already there, a symlink included. /proc must be procfs. */
static int pin_through_proc(int dirfd, const char *name, int fd)
{
	char path[PATH_MAX];
	struct statfs fs;
	union bpf_attr attr;
	int n;

	if (name[0] == '\0' || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	if (statfs("/proc/self/fd", &fs) < 0)
		return -errno;
	if (fs.f_type != PROC_SUPER_MAGIC)
		return -EXDEV;
	n = snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dirfd, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	memset(&attr, 0, sizeof(attr));
	attr.pathname = (uint64_t)(uintptr_t)path;
	attr.bpf_fd = (uint32_t)fd;
	return neg_errno(syscall(SYS_bpf, BPF_OBJ_PIN, &attr, sizeof(attr)));
}

int bt_obj_pin_at(int dirfd, const char *name, int fd)
{
	struct bt_obj_attr attr = {
		.pathname = (uint64_t)(uintptr_t)name,
		.bpf_fd = (uint32_t)fd,
		.file_flags = BPF_F_PATH_FD,
		.path_fd = dirfd,
	};

	if (!bt_pin_path_fd_supported())
		return pin_through_proc(dirfd, name, fd);
	return neg_errno(syscall(SYS_bpf, BPF_OBJ_PIN, &attr, sizeof(attr)));
}

/* BPF_OBJ_GET of the very inode `name` is in `dirfd`: the name is opened O_PATH without following a
 * symlink (which runs nothing, not even an iterator), checked to be a pin, and the object is got through
 * the descriptor's /proc/self/fd magic link. So neither a symlink nor a pin swapped in between the check
 * and the get can redirect it, and no BPF_F_PATH_FD is needed (Linux 6.1 refuses it in BPF_OBJ_GET). */
int bt_pin_open(int dirfd, const char *name, struct bt_pin_stat *out)
{
	char proc[64];
	struct stat st;
	int fd, ret;

	fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	if (out) {
		out->inode = st.st_ino;
		out->mode = st.st_mode;
		out->uid = st.st_uid;
		out->gid = st.st_gid;
	}
	if (S_ISLNK(st.st_mode))
		ret = -ELOOP;
	else if (S_ISDIR(st.st_mode))
		ret = -EISDIR;
	else if (!S_ISREG(st.st_mode))
		ret = -EINVAL;
	else {
		union bpf_attr attr;

		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		memset(&attr, 0, sizeof(attr));
		attr.pathname = (uint64_t)(uintptr_t)proc;
		ret = neg_errno(syscall(SYS_bpf, BPF_OBJ_GET, &attr, sizeof(attr)));
	}
	close(fd);
	return ret;
}

int bt_obj_get_at(int dirfd, const char *name)
{
	return bt_pin_open(dirfd, name, NULL);
}

int bt_fd_object_kind(int fd)
{
	char path[64], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	if (strcmp(target, "anon_inode:bpf-map") == 0)
		return BT_OBJECT_MAP;
	if (strcmp(target, "anon_inode:bpf-prog") == 0)
		return BT_OBJECT_PROG;
	/* "bpf_link" before Linux 6.x renamed it "bpf-link". */
	if (strcmp(target, "anon_inode:bpf-link") == 0 || strcmp(target, "anon_inode:bpf_link") == 0)
		return BT_OBJECT_LINK;
	return BT_OBJECT_UNKNOWN;
}

static int fdinfo_frozen(int fd)
{
	char path[64], line[128];
	int frozen = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "frozen:", 7) == 0) {
			frozen = atoi(line + 7) != 0;
			break;
		}
	}
	fclose(f);
	return frozen;
}

int bt_map_info_by_fd(int fd, struct bt_map_info *out)
{
	struct bpf_map_info info;
	uint32_t len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		return -errno;
	memset(out, 0, sizeof(*out));
	out->type = info.type;
	out->id = info.id;
	out->key_size = info.key_size;
	out->value_size = info.value_size;
	out->max_entries = info.max_entries;
	out->map_flags = info.map_flags;
	out->map_extra = info.map_extra;
	memcpy(out->name, info.name, sizeof(out->name));
	out->name[sizeof(out->name) - 1] = '\0';
	out->frozen = fdinfo_frozen(fd);
	return 0;
}

int bt_prog_next(uint32_t after, uint32_t *id, char name[16], uint32_t *map_ids, uint32_t max_maps, uint32_t *nr_maps)
{
	__u32 next = after;

	for (;;) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);
		int fd;

		if (bpf_prog_get_next_id(next, &next) < 0)
			return -errno;
		fd = bpf_prog_get_fd_by_id(next);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		memset(&info, 0, sizeof(info));
		info.nr_map_ids = max_maps;
		info.map_ids = (__u64)(uintptr_t)map_ids;
		if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0) {
			int error = errno;

			close(fd);
			return -error;
		}
		close(fd);
		*id = info.id;
		memcpy(name, info.name, 16);
		*nr_maps = info.nr_map_ids < max_maps ? info.nr_map_ids : max_maps;
		return 0;
	}
}
