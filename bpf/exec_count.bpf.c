// SPDX-License-Identifier: GPL-2.0
/* Counts exec()s three ways, one slot of `execs` each: a tracepoint through a perf event (0), a raw
 * tracepoint (1) and a BTF tracepoint (2), all at sched_process_exec. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} execs SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *value = bpf_map_lookup_elem(&execs, &slot);

	if (value)
		__sync_fetch_and_add(value, 1);
}

SEC("tp/sched/sched_process_exec")
int exec_tracepoint(void *ctx)
{
	count(0);
	return 0;
}

SEC("raw_tp/sched_process_exec")
int exec_raw(void *ctx)
{
	count(1);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int exec_btf(void *ctx)
{
	count(2);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
