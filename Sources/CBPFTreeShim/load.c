/* Loading the programs of one ELF object with libbpf, its maps bound to pinned ones, its globals set. */
#define _GNU_SOURCE
#include "shim_load.h"
#include "shim_internal.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/bpf.h>

const char *bt_libbpf_version(void)
{
	return libbpf_version_string();
}

static __thread char *bt_prog_log;
static __thread size_t bt_prog_log_size;

/* Appends every warning; when the buffer is full, keeps the tail (where the verifier names the fault). */
static int bt_prog_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	char line[4096];
	size_t used, len;

	if (level != LIBBPF_WARN || !bt_prog_log || bt_prog_log_size < 2)
		return 0;
	len = (size_t)vsnprintf(line, sizeof(line), fmt, args);
	if (len >= sizeof(line))
		len = sizeof(line) - 1;
	used = strlen(bt_prog_log);
	if (len >= bt_prog_log_size)
		return 0;
	if (used + len >= bt_prog_log_size) {
		size_t drop = used + len - bt_prog_log_size + 1;

		memmove(bt_prog_log, bt_prog_log + drop, used - drop + 1);
		used -= drop;
	}
	memcpy(bt_prog_log + used, line, len + 1);
	return 0;
}

/* Marks the object's maps (in result->object_maps order) that the loaded program refers to. */
static void mark_used_maps(struct bpf_object *obj, struct bt_prog_load_result *result, const __u32 *ids, __u32 count)
{
	struct bpf_map *map;
	uint32_t index = 0;

	bpf_object__for_each_map(map, obj) {
		struct bpf_map_info info;
		__u32 len = sizeof(info);

		if (index >= result->nr_object_maps)
			break;
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(bpf_map__fd(map), &info, &len) == 0)
			for (__u32 i = 0; i < count; i++)
				if (ids[i] == info.id)
					result->object_maps[index].used = 1;
		index++;
	}
}

int bt_prog_load(const void *object, size_t size, const char *object_name, struct bt_load_program *programs,
		 uint32_t nr_programs, const char *const *map_names, const int *map_fds, uint32_t nr_maps,
		 const struct bt_load_global *globals, uint32_t nr_globals, int keep, struct bt_prog_load_result *result)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = object_name);
	struct bpf_object *obj;
	struct bpf_program *prog, *targets[BT_LOAD_MAX_PROGRAMS] = { 0 };
	struct bpf_map *map;
	__u32 map_ids[BT_PROG_MAX_MAPS];
	int err = 0;

	memset(result, 0, sizeof(*result));
	for (uint32_t i = 0; i < nr_programs; i++)
		programs[i].fd = -1;
	if (nr_programs == 0 || nr_programs > BT_LOAD_MAX_PROGRAMS)
		return -E2BIG;
	bt_prog_log = result->log;
	bt_prog_log_size = sizeof(result->log);
	libbpf_set_print(bt_prog_print);

	obj = bpf_object__open_mem(object, size, &opts);
	if (!obj) {
		err = -errno;
		goto out;
	}
	bpf_object__for_each_program(prog, obj) {
		const char *name = bpf_program__name(prog);
		size_t used = strlen(result->programs);
		int wanted = 0;

		for (uint32_t i = 0; i < nr_programs; i++)
			if (strcmp(name, programs[i].name) == 0) {
				targets[i] = prog;
				wanted = 1;
			}
		if (!wanted)
			bpf_program__set_autoload(prog, false);
		snprintf(result->programs + used, sizeof(result->programs) - used, "%s%s", used ? ", " : "", name);
	}
	bpf_object__for_each_map(map, obj) {
		struct bt_object_map *out;

		/* LIBBPF_PIN_BY_NAME would make libbpf reuse or pin the map at <pin_root_path>/<name>, outside
		 * the anchor: bpftree's bindings are the only source of shared maps. */
		if (bpf_map__set_pin_path(map, NULL) < 0) {
			err = -errno;
			goto close;
		}
		if (result->nr_object_maps >= BT_OBJECT_MAX_MAPS)
			continue;
		out = &result->object_maps[result->nr_object_maps++];
		out->internal = bpf_map__is_internal(map);
		snprintf(out->name, sizeof(out->name), "%s", bpf_map__name(map));
		out->type = bpf_map__type(map);
		out->key_size = bpf_map__key_size(map);
		out->value_size = bpf_map__value_size(map);
	}
	for (uint32_t i = 0; i < nr_programs; i++) {
		struct bpf_program *target = targets[i];

		result->failed = i;
		if (!target) {
			err = -ENOENT;
			goto close;
		}
		if (programs[i].type >= 0) {
			enum bpf_prog_type section = bpf_program__type(target);

			if (section != BPF_PROG_TYPE_UNSPEC && section != (enum bpf_prog_type)programs[i].type) {
				result->type = section;
				err = -EMEDIUMTYPE;
				goto close;
			}
			bpf_program__set_type(target, programs[i].type);
		}
		if (programs[i].attach_type >= 0)
			bpf_program__set_expected_attach_type(target, programs[i].attach_type);
		snprintf(programs[i].section, sizeof(programs[i].section), "%s", bpf_program__section_name(target));
	}
	result->failed = 0;
	for (uint32_t i = 0; i < nr_maps; i++) {
		map = bpf_object__find_map_by_name(obj, map_names[i]);
		if (!map) {
			snprintf(result->log, sizeof(result->log), "%s", map_names[i]);
			err = -ENXIO;
			goto close;
		}
		if (bpf_map__reuse_fd(map, map_fds[i]) < 0) {
			err = -errno;
			goto close;
		}
	}
	err = bt_set_globals(obj, globals, nr_globals, result->log, sizeof(result->log));
	if (err)
		goto close;
	result->loading = 1;
	result->type = bpf_program__type(targets[0]);
	result->expected_attach_type = bpf_program__expected_attach_type(targets[0]);
	if (bpf_object__load(obj) < 0) {
		err = -errno;
		/* libbpf loads in order and stops at the first refusal: the first program without an fd. */
		for (uint32_t i = 0; i < nr_programs; i++)
			if (bpf_program__fd(targets[i]) < 0) {
				result->failed = i;
				result->type = bpf_program__type(targets[i]);
				result->expected_attach_type = bpf_program__expected_attach_type(targets[i]);
				break;
			}
		goto close;
	}
	for (uint32_t i = 0; i < nr_programs; i++) {
		struct bpf_prog_info info;
		__u32 info_len = sizeof(info);
		int fd = bpf_program__fd(targets[i]);

		memset(&info, 0, sizeof(info));
		info.nr_map_ids = BT_PROG_MAX_MAPS;
		info.map_ids = (__u64)(uintptr_t)map_ids;
		if (bpf_obj_get_info_by_fd(fd, &info, &info_len) < 0) {
			err = -errno;
			result->failed = i;
			goto close;
		}
		if (i == 0)
			mark_used_maps(obj, result, map_ids,
				       info.nr_map_ids < BT_PROG_MAX_MAPS ? info.nr_map_ids : BT_PROG_MAX_MAPS);
		programs[i].loaded_type = info.type;
		programs[i].expected_attach_type = bpf_program__expected_attach_type(targets[i]);
		programs[i].tag = bt_tag(info.tag);
		memcpy(programs[i].kernel_name, info.name, sizeof(programs[i].kernel_name));
		if (keep) {
			programs[i].fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
			if (programs[i].fd < 0) {
				err = -errno;
				result->failed = i;
				goto close;
			}
		}
	}
close:
	if (err)
		for (uint32_t i = 0; i < nr_programs; i++)
			if (programs[i].fd >= 0) {
				close(programs[i].fd);
				programs[i].fd = -1;
			}
	bpf_object__close(obj);
out:
	bt_prog_log = NULL;
	return err;
}
