// SPDX-License-Identifier: GPL-2.0
/* Per-cgroup traffic counters for a job (examples/job-stats):
 *   count_egress   cgroup_skb/egress: attached to each cgroup of the job through a pinned link; counts the
 *                  packets and bytes every socket of the cgroup sends, keyed by the cgroup's id.
 *   cgroup_stats   iter/cgroup: a pinned cgroup_iter link anchored at one cgroup; reading the pin prints
 *                  that cgroup's counters.
 * Built with scripts/build-bpf.sh (not embedded in bpftree: manifests name the object file). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "iter.h"

char LICENSE[] SEC("license") = "GPL";

struct counters {
	__u64 packets;
	__u64 bytes;
};

/* Shared by both programs; declared in the manifest (jobs/A/counters) and bound to it by name. An LRU
 * hash: the counters of cgroups that are gone make room for new ones. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct counters);
} counters SEC(".maps");

SEC("cgroup_skb/egress")
int count_egress(struct __sk_buff *skb)
{
	__u64 id = bpf_skb_cgroup_id(skb);
	struct counters *c = bpf_map_lookup_elem(&counters, &id);

	if (!c) {
		struct counters zero = {};

		bpf_map_update_elem(&counters, &id, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&counters, &id);
		if (!c)
			return 1;
	}
	__sync_fetch_and_add(&c->packets, 1);
	__sync_fetch_and_add(&c->bytes, skb->len);
	return 1; /* let the packet pass */
}

/* Only the fields read here; CO-RE relocates them against the running kernel's BTF. */
struct kernfs_node {
	__u64 id;
} __attribute__((preserve_access_index));

struct cgroup {
	struct kernfs_node *kn;
} __attribute__((preserve_access_index));

struct bpf_iter__cgroup {
	struct bpf_iter_meta *meta;
	struct cgroup *cgroup;
} __attribute__((preserve_access_index));

SEC("iter/cgroup")
int cgroup_stats(struct bpf_iter__cgroup *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct cgroup *cgrp = ctx->cgroup;
	struct counters *c;
	__u64 id, packets = 0, bytes = 0;

	/* Called once more with no cgroup at the end of the walk. */
	if (!cgrp)
		return 0;
	id = cgrp->kn->id;
	c = bpf_map_lookup_elem(&counters, &id);
	if (c) {
		packets = c->packets;
		bytes = c->bytes;
	}
	BPF_SEQ_PRINTF(seq, "cgroup_id %llu\npackets %llu\nbytes %llu\n", id, packets, bytes);
	return 0;
}
