/* BPF objects by their pins and ids (objects.c). */
#ifndef BPFTREE_SHIM_OBJECTS_H
#define BPFTREE_SHIM_OBJECTS_H

#include <stddef.h>
#include <stdint.h>

/** BPF_OBJ_PIN of `fd` at the one component `name` in `dirfd`: with BPF_F_PATH_FD (Linux 6.5), else
 *  through /proc/self/fd/DIRFD/NAME (-EXDEV when /proc is not procfs). */
int bt_obj_pin_at(int dirfd, const char *name, int fd);
/** Whether BPF_OBJ_PIN takes BPF_F_PATH_FD on this kernel (probed once per process). */
int bt_pin_path_fd_supported(void);
/** What `bt_pin_open` found at the name, filled whenever the name exists. */
struct bt_pin_stat {
	uint64_t inode;
	uint32_t mode;
	uint32_t uid;
	uint32_t gid;
};
/** BPF_OBJ_GET of the pin `name` in `dirfd` without following a symlink: returns a new fd, -ELOOP for a
 *  symlink, -EISDIR for a directory, -EINVAL for another kind of file; `out` (may be NULL) gets its stat. */
int bt_pin_open(int dirfd, const char *name, struct bt_pin_stat *out);
/** `bt_pin_open` without the stat. */
int bt_obj_get_at(int dirfd, const char *name);

enum bt_object_kind { BT_OBJECT_UNKNOWN = 0, BT_OBJECT_MAP = 1, BT_OBJECT_PROG = 2, BT_OBJECT_LINK = 3 };
/** Kind of the BPF object behind `fd`, from its anon-inode name in /proc/self/fd (as bpftool does). */
int bt_fd_object_kind(int fd);

struct bt_map_info {
	uint32_t type;
	uint32_t id;
	uint32_t key_size;
	uint32_t value_size;
	uint32_t max_entries;
	uint32_t map_flags;
	uint64_t map_extra;
	char name[16];
	int32_t frozen; /* from /proc/self/fdinfo; -1 when unknown */
};
/** BPF_OBJ_GET_INFO_BY_FD for a map fd, plus the frozen state. */
int bt_map_info_by_fd(int fd, struct bt_map_info *info);

/** The loaded program with the next id after `after`: its id, name and up to `max_maps` map ids.
 *  Returns 0, -ENOENT after the last, or -errno. Programs that vanish meanwhile are skipped. */
int bt_prog_next(uint32_t after, uint32_t *id, char name[16], uint32_t *map_ids, uint32_t max_maps, uint32_t *nr_maps);

#endif
