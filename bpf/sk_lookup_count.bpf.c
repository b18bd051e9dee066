// SPDX-License-Identifier: GPL-2.0
/* Counts the socket lookups of a network namespace and changes none (examples/sk-lookup-count):
 *   count_lookups   sk_lookup: attached to a network namespace through a pinned netns link; runs for
 *                   every TCP connection request and UDP packet the namespace delivers locally.
 * Built with scripts/build-bpf.sh (manifests name the object file). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

/* Declared in the manifest and bound to it by name. Key 0: TCP, 1: UDP, 2: anything else. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} lookups SEC(".maps");

SEC("sk_lookup")
int count_lookups(struct bpf_sk_lookup *ctx)
{
	__u32 key = ctx->protocol == 6 ? 0 : ctx->protocol == 17 ? 1 : 2;
	__u64 *count = bpf_map_lookup_elem(&lookups, &key);

	if (count)
		__sync_fetch_and_add(count, 1);
	return SK_PASS;
}
