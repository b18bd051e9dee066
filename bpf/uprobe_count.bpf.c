// SPDX-License-Identifier: GPL-2.0
/* Counts a user-space function's calls (slot 0 of `calls`) and returns (slot 1): the link names the
 * binary and the function. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} calls SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *value = bpf_map_lookup_elem(&calls, &slot);

	if (value)
		__sync_fetch_and_add(value, 1);
}

SEC("uprobe")
int count_calls(void *ctx)
{
	count(0);
	return 0;
}

SEC("uretprobe")
int count_returns(void *ctx)
{
	count(1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
