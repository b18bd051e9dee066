/* The reference for bench/run's S6: a C inotify daemon doing the cgroup workflow with plain syscalls and
 * nothing around them (no manifest, no ledger, no checks, no plan). Its latencies are the ones bpftree's
 * service is compared with.
 *
 *   cgroupd maps ANCHOR CGROUPDIR              per cgroup: ANCHOR/jobs/A/<id>/{stats,events}, as
 *                                              examples/cgroups/job-a-cgroups.yaml declares them
 *   cgroupd job-stats ANCHOR CGROUPDIR OBJECT  loads OBJECT's two programs once; per cgroup:
 *                                              ANCHOR/jobs/A/<id>/{egress,stats}, the links of
 *                                              examples/job-stats/job-stats.yaml
 *
 *   cgroupd verify ANCHOR CGROUPDIR            one no-op pass and exit: lists the cgroups, and for
 *                                              each opens its subtree, stats every entry and inspects
 *                                              every pin (OBJ_GET + OBJ_GET_INFO_BY_FD), as a timer pass
 *                                              must to see drift
 *   cgroupd walk ANCHOR CGROUPDIR              the same walk, stats only (no pin inspected): the floor
 *                                              of any pass that looks at the tree
 *
 * At start it makes the subtrees of the cgroups there are, prints "ready", then follows inotify: a new
 * cgroup gets its subtree, a removed one loses it. Pins are made relative to directory fds with
 * BPF_F_PATH_FD, as bpftree makes them. */
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef BPF_F_PATH_FD
#define BPF_F_PATH_FD (1U << 14)
#endif

static int anchor_fd, jobs_fd, cgroups_fd, stats_links;
static int egress_prog = -1, stats_prog = -1;

static void die(const char *what, const char *path)
{
	fprintf(stderr, "cgroupd: %s %s: %s\n", what, path, strerror(errno));
	exit(2);
}

/* BPF_OBJ_PIN with path_fd (Linux 6.5): Debian 12's libbpf 1.1 and uapi headers lack the field. */
struct obj_attr {
	uint64_t pathname;
	uint32_t bpf_fd;
	uint32_t file_flags;
	int32_t path_fd;
	uint32_t pad;
};

static void pin(int dir, const char *name, int fd, mode_t mode)
{
	struct obj_attr attr = {.pathname = (uint64_t)(uintptr_t)name, .bpf_fd = (uint32_t)fd,
				.file_flags = BPF_F_PATH_FD, .path_fd = dir};
	if (fd < 0)
		die("create", name);
	if (syscall(SYS_bpf, BPF_OBJ_PIN, &attr, sizeof(attr)))
		die("pin", name);
	if (mode && fchmodat(dir, name, mode, 0))
		die("chmod", name);
	close(fd);
}

static void add(const char *name)
{
	struct stat st;
	char id[32];
	if (fstatat(cgroups_fd, name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISDIR(st.st_mode))
		return; /* gone already */
	snprintf(id, sizeof(id), "%llu", (unsigned long long)st.st_ino);
	if (mkdirat(jobs_fd, id, 0750) && errno != EEXIST)
		die("mkdir", id);
	int dir = openat(jobs_fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir < 0)
		die("open", id);
	if (egress_prog < 0) {
		pin(dir, "stats", bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "stats", 4, 16, 1, NULL), 0);
		pin(dir, "events", bpf_map_create(BPF_MAP_TYPE_RINGBUF, "events", 0, 0, 65536, NULL), 0);
	} else {
		int cgroup = openat(cgroups_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cgroup < 0) {
			close(dir);
			return;
		}
		pin(dir, "egress", bpf_link_create(egress_prog, cgroup, BPF_CGROUP_INET_EGRESS, NULL), 0);
		union bpf_iter_link_info info = {.cgroup = {.order = BPF_CGROUP_ITER_SELF_ONLY, .cgroup_fd = cgroup}};
		LIBBPF_OPTS(bpf_link_create_opts, iter, .iter_info = &info, .iter_info_len = sizeof(info));
		pin(dir, "stats", bpf_link_create(stats_prog, 0, BPF_TRACE_ITER, &iter), 0444);
		close(cgroup);
		stats_links++;
	}
	close(dir);
}

/* By id: the cgroup's directory is gone, so its name is all the event gives; names map to ids here. */
static struct { char name[256]; char id[32]; } *known;
static size_t nknown, capknown;

static void remember(const char *name)
{
	struct stat st;
	if (fstatat(cgroups_fd, name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISDIR(st.st_mode))
		return;
	if (nknown == capknown) {
		capknown = capknown ? 2 * capknown : 1024;
		known = realloc(known, capknown * sizeof(*known));
	}
	snprintf(known[nknown].name, sizeof(known[nknown].name), "%s", name);
	snprintf(known[nknown].id, sizeof(known[nknown].id), "%llu", (unsigned long long)st.st_ino);
	nknown++;
}

static void removed(const char *name)
{
	for (size_t i = nknown; i-- > 0;) {
		if (strcmp(known[i].name, name))
			continue;
		int dir = openat(jobs_fd, known[i].id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dir >= 0) {
			const char *names[] = {"stats", "events", "egress"};
			for (int n = 0; n < 3; n++)
				unlinkat(dir, names[n], 0);
			close(dir);
			unlinkat(jobs_fd, known[i].id, AT_REMOVEDIR);
		}
		known[i] = known[--nknown];
		return;
	}
}

static int verify(const char *anchor, const char *cgroups, int inspect)
{
	int root = open(anchor, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int jobs = root < 0 ? -1 : openat(root, "jobs/A", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *listing = opendir(cgroups);
	if (jobs < 0 || !listing)
		die("open", anchor);
	long pins = 0;
	for (struct dirent *entry; (entry = readdir(listing));) {
		if (entry->d_type != DT_DIR || entry->d_name[0] == '.')
			continue;
		char id[32];
		snprintf(id, sizeof(id), "%llu", (unsigned long long)entry->d_ino);
		int dir = openat(jobs, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dir < 0)
			die("open", id);
		DIR *subtree = fdopendir(dir);
		for (struct dirent *pin; (pin = readdir(subtree));) {
			if (pin->d_name[0] == '.')
				continue;
			struct stat st;
			if (fstatat(dirfd(subtree), pin->d_name, &st, AT_SYMLINK_NOFOLLOW))
				die("stat", pin->d_name);
			pins++;
			if (!inspect)
				continue;
			struct obj_attr attr = {.pathname = (uint64_t)(uintptr_t)pin->d_name, .file_flags = BPF_F_PATH_FD,
						.path_fd = dirfd(subtree)};
			int fd = syscall(SYS_bpf, BPF_OBJ_GET, &attr, sizeof(attr));
			if (fd < 0)
				die("get", pin->d_name);
			struct bpf_link_info info = {};
			__u32 length = sizeof(info);
			bpf_obj_get_info_by_fd(fd, &info, &length);
			close(fd);
		}
		closedir(subtree);
	}
	closedir(listing);
	printf("%ld\n", pins);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "verify"))
		return verify(argv[2], argv[3], 1);
	if (argc == 4 && !strcmp(argv[1], "walk"))
		return verify(argv[2], argv[3], 0);
	if (argc < 4 || (strcmp(argv[1], "maps") && (strcmp(argv[1], "job-stats") || argc < 5))) {
		fprintf(stderr, "usage: cgroupd maps|job-stats ANCHOR CGROUPDIR [OBJECT]\n");
		return 2;
	}
	anchor_fd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cgroups_fd = open(argv[3], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (anchor_fd < 0 || cgroups_fd < 0)
		die("open", argv[2]);
	mkdirat(anchor_fd, "jobs", 0755);
	int jobs = openat(anchor_fd, "jobs", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	mkdirat(jobs, "A", 0755);
	jobs_fd = openat(jobs, "A", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (jobs_fd < 0)
		die("open", "jobs/A");
	if (!strcmp(argv[1], "job-stats")) {
		struct bpf_object *object = bpf_object__open_file(argv[4], NULL);
		if (!object || bpf_object__load(object))
			die("load", argv[4]);
		egress_prog = bpf_program__fd(bpf_object__find_program_by_name(object, "count_egress"));
		stats_prog = bpf_program__fd(bpf_object__find_program_by_name(object, "cgroup_stats"));
	}
	int watch = inotify_init1(IN_CLOEXEC);
	if (inotify_add_watch(watch, argv[3], IN_CREATE | IN_DELETE | IN_ONLYDIR) < 0)
		die("inotify", argv[3]);
	DIR *listing = fdopendir(dup(cgroups_fd));
	for (struct dirent *entry; (entry = readdir(listing));) {
		if (entry->d_type != DT_DIR || entry->d_name[0] == '.')
			continue;
		add(entry->d_name);
		remember(entry->d_name);
	}
	closedir(listing);
	printf("ready\n");
	fflush(stdout);
	char buffer[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t count = read(watch, buffer, sizeof(buffer));
		if (count <= 0)
			return errno == EINTR ? 0 : 1;
		for (char *p = buffer; p < buffer + count;) {
			struct inotify_event *event = (struct inotify_event *)p;
			if (event->len && (event->mask & IN_ISDIR)) {
				if (event->mask & IN_CREATE) {
					add(event->name);
					remember(event->name);
				} else if (event->mask & IN_DELETE) {
					removed(event->name);
				}
			}
			p += sizeof(*event) + event->len;
		}
	}
}
