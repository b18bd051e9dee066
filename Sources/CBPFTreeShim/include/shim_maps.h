/* Maps from user space: the ledger, migration, map info (maps.c). */
#ifndef BPFTREE_SHIM_MAPS_H
#define BPFTREE_SHIM_MAPS_H

#include <stddef.h>
#include <stdint.h>

/** BPF_MAP_CREATE through libbpf; returns the new fd. */
int bt_map_create(uint32_t type, const char *name, uint32_t key_size, uint32_t value_size, uint32_t max_entries,
		  uint32_t flags);
int bt_map_update(int fd, const void *key, const void *value, uint64_t flags);
/** BPF_MAP_LOOKUP_ELEM. */
int bt_map_lookup(int fd, const void *key, void *value);
/** BPF_MAP_DELETE_ELEM; a missing key is not an error. */
int bt_map_delete(int fd, const void *key);
/** BPF_MAP_UPDATE_BATCH of `count` keys and values laid out back to back. */
int bt_map_update_batch(int fd, const void *keys, const void *values, uint32_t count, uint64_t flags);
/** BPF_MAP_DELETE_BATCH of `count` keys of `key_size` bytes laid out back to back; missing keys are not an error. */
int bt_map_delete_batch(int fd, const void *keys, uint32_t key_size, uint32_t count);
/** BPF_MAP_GET_NEXT_KEY: the key after `key` (NULL: the first) into `next`; -ENOENT past the last. */
int bt_map_get_next_key(int fd, const void *key, void *next);
/** BPF_MAP_LOOKUP_BATCH: up to *count entries after the batch token `in` (NULL: from the start) into keys and
 *  values; the next token goes to `out` (token buffers hold 8 bytes). Returns 0, or -ENOENT once the
 *  map is exhausted (with the last entries in *count). */
int bt_map_lookup_batch(int fd, void *in, void *out, void *keys, void *values, uint32_t *count);
/** Counts the entries of a map by walking its keys (BPF_MAP_GET_NEXT_KEY). */
int bt_map_count(int fd, uint32_t key_size, uint64_t *count);
/** Copies every entry of `src` into `dst` (same key size and value length, per-CPU values whole);
 *  writes how many entries were copied. */
int bt_map_copy(int src, int dst, uint32_t key_size, uint32_t value_len, uint64_t *copied);
/** BPF_MAP_FREEZE. */
int bt_map_freeze(int fd);

/* The ownership ledger: a hash map pinned at the anchor, key = anchor-relative path (NUL padded). */
#define BT_LEDGER_PATH_SIZE 256
#define BT_LEDGER_MANIFEST_SIZE 64
#define BT_LEDGER_OWNER_SIZE 64
/* A ledger record. Ledgers made before owners end after `manifest` (96 bytes); bpftree reads them and
 * moves them to this layout at its first write. */
struct bt_ledger_value {
	uint64_t inode;
	uint64_t pending_inode;
	uint64_t fingerprint;
	uint32_t kind;
	uint32_t state;
	char manifest[BT_LEDGER_MANIFEST_SIZE];
	char owner[BT_LEDGER_OWNER_SIZE];
};

#endif
