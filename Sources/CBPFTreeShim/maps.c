/* Maps from user space: creation, element updates, lookups and deletes (one and batched), counting, copying and freezing. */
#define _GNU_SOURCE
#include "shim_maps.h"
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

/* ---- maps from user space ---- */

int bt_map_create(uint32_t type, const char *name, uint32_t key_size, uint32_t value_size, uint32_t max_entries,
		  uint32_t flags)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = flags);
	int fd = bpf_map_create((enum bpf_map_type)type, name, key_size, value_size, max_entries, &opts);

	return fd < 0 ? -errno : fd;
}

int bt_map_update(int fd, const void *key, const void *value, uint64_t flags)
{
	return bpf_map_update_elem(fd, key, value, flags) < 0 ? -errno : 0;
}

int bt_map_lookup(int fd, const void *key, void *value)
{
	return bpf_map_lookup_elem(fd, key, value) < 0 ? -errno : 0;
}

int bt_map_delete(int fd, const void *key)
{
	if (bpf_map_delete_elem(fd, key) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int bt_map_update_batch(int fd, const void *keys, const void *values, uint32_t count, uint64_t flags)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = flags);
	__u32 n = count;

	if (count == 0)
		return 0;
	return bpf_map_update_batch(fd, keys, values, &n, &opts) < 0 ? -errno : 0;
}

int bt_map_delete_batch(int fd, const void *keys, uint32_t key_size, uint32_t count)
{
	const char *next = keys;

	while (count > 0) {
		__u32 n = count;

		if (bpf_map_delete_batch(fd, next, &n, NULL) == 0)
			return 0;
		if (errno != ENOENT || n >= count)
			return -errno;
		/* The kernel stops at a missing key, after deleting the n before it: skip it and go on. */
		next += (size_t)(n + 1) * key_size;
		count -= n + 1;
	}
	return 0;
}

int bt_map_get_next_key(int fd, const void *key, void *next)
{
	return bpf_map_get_next_key(fd, key, next) < 0 ? -errno : 0;
}

int bt_map_lookup_batch(int fd, void *in, void *out, void *keys, void *values, uint32_t *count)
{
	__u32 n = *count;
	int ret = bpf_map_lookup_batch(fd, in, out, keys, values, &n, NULL);

	*count = n;
	return ret < 0 ? -errno : 0;
}

int bt_map_count(int fd, uint32_t key_size, uint64_t *count)
{
	uint8_t key[512], next[512];
	void *prev = NULL;

	*count = 0;
	if (key_size > sizeof(key))
		return -E2BIG;
	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(key, next, key_size);
		prev = key;
		(*count)++;
	}
	return errno == ENOENT ? 0 : -errno;
}

int bt_map_copy(int src, int dst, uint32_t key_size, uint32_t value_len, uint64_t *copied)
{
	uint8_t key[512], next[512];
	void *prev = NULL, *value;
	int ret = 0;

	*copied = 0;
	if (key_size > sizeof(key))
		return -E2BIG;
	value = malloc(value_len ? value_len : 1);
	if (!value)
		return -ENOMEM;
	while (bpf_map_get_next_key(src, prev, next) == 0) {
		memcpy(key, next, key_size);
		prev = key;
		if (bpf_map_lookup_elem(src, key, value) < 0) {
			if (errno == ENOENT) /* deleted meanwhile */
				continue;
			ret = -errno;
			break;
		}
		if (bpf_map_update_elem(dst, key, value, BPF_ANY) < 0) {
			ret = -errno;
			break;
		}
		(*copied)++;
	}
	if (ret == 0 && errno != ENOENT)
		ret = -errno;
	free(value);
	return ret;
}

int bt_map_freeze(int fd)
{
	return bpf_map_freeze(fd) < 0 ? -errno : 0;
}
