// SPDX-License-Identifier: GPL-2.0
/* Counts the packets a netfilter hook sees and accepts every one (examples/nf-count).
 *   count_packets   netfilter: attached to a hook through a pinned netfilter link (Linux 6.4).
 * Debian 12's libbpf 1.1 knows no "netfilter" section: the manifest declares type: netfilter. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define NF_ACCEPT 1

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} packets SEC(".maps");

SEC("netfilter")
int count_packets(void *ctx)
{
	__u32 key = 0;
	__u64 *value = bpf_map_lookup_elem(&packets, &key);

	if (value)
		__sync_fetch_and_add(value, 1);
	return NF_ACCEPT;
}
