// SPDX-License-Identifier: GPL-2.0
/* Prints a map's elements (examples/map-dump):
 *   dump_counts   iter/bpf_map_elem: a pinned iterator over a declared map of u32 keys and u64 values;
 *                 reading the pin prints "key value" per element.
 * Built with scripts/build-bpf.sh (manifests name the object file). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "iter.h"

char LICENSE[] SEC("license") = "GPL";

struct bpf_map;

struct bpf_iter__bpf_map_elem {
	struct bpf_iter_meta *meta;
	struct bpf_map *map;
	void *key;
	void *value;
} __attribute__((preserve_access_index));

SEC("iter/bpf_map_elem")
int dump_counts(struct bpf_iter__bpf_map_elem *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	__u32 *key = ctx->key;
	__u64 *value = ctx->value;

	/* Called once more with no element at the end of the walk. */
	if (!key || !value)
		return 0;
	BPF_SEQ_PRINTF(seq, "%u %llu\n", *key, *value);
	return 0;
}
