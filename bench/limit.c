/* The reference for bench/run: the same work bpftree does, as plain syscalls one by one, with nothing
 * around them (no manifest, no ledger, no checks). Its times are the limit bpftree is compared with.
 *
 *   limit create ANCHOR DIRS MAPS      mkdir ANCHOR/dNNNN, then per map: MAP_CREATE, UPDATE_ELEM, OBJ_PIN, close
 *   limit walk-stat ANCHOR             getdents64 + statx of every entry, recursively
 *   limit walk-get ANCHOR              getdents64 + statx + OBJ_GET + OBJ_GET_INFO_BY_FD + close per pin
 *   limit repair ANCHOR LIST           recreate the maps and chmod the directories listed in LIST
 *   limit run COMMAND [ARGS...]        run COMMAND (stdout discarded); print its wall time in seconds and
 *                                      its peak RSS in KiB (measured from a small process, so that the
 *                                      parent's memory is not counted, as it would be from Python)
 *
 * Map shapes follow bench/run's manifest generator: map i of a directory is an array when i is even and
 * a hash otherwise, 4-byte key, 8-byte value, 1 entry {0: i}. Every path is relative to the anchor fd and
 * pinned with BPF_F_PATH_FD, as bpftree does. bench/run times the whole process, as it does bpftree's. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long bpf(int cmd, union bpf_attr *attr)
{
	return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

/* BPF_OBJ_PIN / BPF_OBJ_GET with path_fd (Linux 6.5): Debian 12's 6.1 uapi headers lack the field. */
#ifndef BPF_F_PATH_FD
#define BPF_F_PATH_FD (1U << 14)
#endif
struct obj_attr {
	uint64_t pathname;
	uint32_t bpf_fd;
	uint32_t file_flags;
	int32_t path_fd;
	uint32_t pad;
};

static long obj_at(int cmd, int dirfd, const char *name, int fd)
{
	struct obj_attr attr = {
		.pathname = (uint64_t)(uintptr_t)name,
		.bpf_fd = (uint32_t)fd,
		.file_flags = BPF_F_PATH_FD,
		.path_fd = dirfd,
	};
	return syscall(SYS_bpf, cmd, &attr, sizeof(attr));
}

static void die(const char *what, const char *path)
{
	fprintf(stderr, "limit: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

/* Creates map `index` of a directory, fills its one entry and pins it as `name` in `dirfd`. */
static void create_map(int dirfd, const char *name, int index)
{
	union bpf_attr attr;
	uint32_t key = 0;
	uint64_t value = (uint64_t)index;
	int fd;

	memset(&attr, 0, sizeof(attr));
	attr.map_type = index % 2 == 0 ? BPF_MAP_TYPE_ARRAY : BPF_MAP_TYPE_HASH;
	attr.key_size = 4;
	attr.value_size = 8;
	attr.max_entries = 1;
	strncpy(attr.map_name, name, sizeof(attr.map_name) - 1);
	fd = bpf(BPF_MAP_CREATE, &attr);
	if (fd < 0)
		die("BPF_MAP_CREATE", name);

	memset(&attr, 0, sizeof(attr));
	attr.map_fd = fd;
	attr.key = (uint64_t)(uintptr_t)&key;
	attr.value = (uint64_t)(uintptr_t)&value;
	if (bpf(BPF_MAP_UPDATE_ELEM, &attr) < 0)
		die("BPF_MAP_UPDATE_ELEM", name);

	if (obj_at(BPF_OBJ_PIN, dirfd, name, fd) < 0)
		die("BPF_OBJ_PIN", name);
	close(fd);
}

static int open_dir(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		die("openat", name);
	return fd;
}

static void create(int anchor, int dirs, int maps)
{
	char name[32];

	for (int d = 0; d < dirs; d++) {
		snprintf(name, sizeof(name), "d%04d", d);
		if (mkdirat(anchor, name, 0755) < 0)
			die("mkdirat", name);
		int dirfd = open_dir(anchor, name);
		for (int m = 0; m < maps; m++) {
			snprintf(name, sizeof(name), "m%02d", m);
			create_map(dirfd, name, m);
		}
		close(dirfd);
	}
}

static long walk(int dirfd, int get_info)
{
	char buffer[32768];
	long entries = 0;
	long n;

	while ((n = syscall(SYS_getdents64, dirfd, buffer, sizeof(buffer))) > 0) {
		for (long off = 0; off < n;) {
			struct dirent64 *d = (struct dirent64 *)(buffer + off);
			off += d->d_reclen;
			if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
				continue;
			struct statx stx;
			if (statx(dirfd, d->d_name, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) < 0)
				die("statx", d->d_name);
			entries++;
			if (S_ISDIR(stx.stx_mode)) {
				int sub = open_dir(dirfd, d->d_name);
				entries += walk(sub, get_info);
				close(sub);
			} else if (S_ISREG(stx.stx_mode) && get_info && strcmp(d->d_name, "maps.debug") != 0 &&
				   strcmp(d->d_name, "progs.debug") != 0) {
				union bpf_attr attr;
				struct bpf_map_info info;
				int fd = obj_at(BPF_OBJ_GET, dirfd, d->d_name, 0);
				if (fd < 0)
					die("BPF_OBJ_GET", d->d_name);
				memset(&info, 0, sizeof(info));
				memset(&attr, 0, sizeof(attr));
				attr.info.bpf_fd = fd;
				attr.info.info_len = sizeof(info);
				attr.info.info = (uint64_t)(uintptr_t)&info;
				if (bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) < 0)
					die("BPF_OBJ_GET_INFO_BY_FD", d->d_name);
				close(fd);
			}
		}
	}
	if (n < 0)
		die("getdents64", "");
	return entries;
}

/* LIST holds lines "map dNNNN mMM" (recreate that pin) and "dir dNNNN MODE" (chmod, octal). */
static void repair(int anchor, const char *list)
{
	FILE *file = fopen(list, "r");
	char kind[8], dir[64], arg[64];

	if (!file)
		die("fopen", list);
	while (fscanf(file, "%7s %63s %63s", kind, dir, arg) == 3) {
		if (strcmp(kind, "map") == 0) {
			int dirfd = open_dir(anchor, dir);
			create_map(dirfd, arg, atoi(arg + 1));
			close(dirfd);
		} else if (fchmodat(anchor, dir, (mode_t)strtoul(arg, NULL, 8), 0) < 0) {
			die("fchmodat", dir);
		}
	}
	fclose(file);
}

static int run(char **command)
{
	struct timespec start, end;
	struct rusage usage;
	int status;

	clock_gettime(CLOCK_MONOTONIC, &start);
	pid_t pid = fork();
	if (pid < 0)
		die("fork", command[0]);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		execv(command[0], command);
		die("execv", command[0]);
	}
	if (wait4(pid, &status, 0, &usage) < 0)
		die("wait4", command[0]);
	clock_gettime(CLOCK_MONOTONIC, &end);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "limit: %s exited with status %d\n", command[0], status);
		return 1;
	}
	printf("%.6f %ld\n", (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9, usage.ru_maxrss);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "run") == 0)
		return run(argv + 2);
	if (argc < 3) {
		fprintf(stderr, "usage: limit create|walk-stat|walk-get|repair ANCHOR [ARGS]\n");
		return 2;
	}
	int anchor = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (anchor < 0)
		die("open", argv[2]);
	if (strcmp(argv[1], "create") == 0 && argc == 5)
		create(anchor, atoi(argv[3]), atoi(argv[4]));
	else if (strcmp(argv[1], "walk-stat") == 0)
		walk(anchor, 0);
	else if (strcmp(argv[1], "walk-get") == 0)
		walk(anchor, 1);
	else if (strcmp(argv[1], "repair") == 0 && argc == 4)
		repair(anchor, argv[3]);
	else {
		fprintf(stderr, "limit: bad arguments\n");
		return 2;
	}
	return 0;
}
