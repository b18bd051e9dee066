// SPDX-License-Identifier: GPL-2.0
/* Counts the packets and bytes an interface receives and lets every one pass (examples/xdp).
 *   xdp_count   xdp: attached to an interface through a pinned XDP link.
 * Built with scripts/build-bpf.sh (manifests name the object file). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct counters {
	__u64 packets;
	__u64 bytes;
};

/* Declared in the manifest and bound to it by name, so that the counts outlive a reload. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counters);
} received SEC(".maps");

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	__u32 key = 0;
	struct counters *c = bpf_map_lookup_elem(&received, &key);

	if (c) {
		__sync_fetch_and_add(&c->packets, 1);
		__sync_fetch_and_add(&c->bytes, ctx->data_end - ctx->data);
	}
	return XDP_PASS;
}
