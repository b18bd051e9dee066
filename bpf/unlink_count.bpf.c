// SPDX-License-Identifier: GPL-2.0
/* Counts the kernel's vfs_unlink() calls through every kind of tracing attachment, one slot of `calls`
 * each: fentry (0), fexit (1), kprobe (2), kretprobe (3), kprobe_multi (4); and file opens through the
 * BPF LSM's file_open hook (5) and fmod_ret on security_file_open (6), which returns 0 and so changes
 * nothing. No argument is read: the programs need no vmlinux.h and load on every kernel from 6.1. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 7);
	__type(key, __u32);
	__type(value, __u64);
} calls SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *value = bpf_map_lookup_elem(&calls, &slot);

	if (value)
		__sync_fetch_and_add(value, 1);
}

SEC("fentry/vfs_unlink")
int unlink_entered(void *ctx)
{
	count(0);
	return 0;
}

SEC("fexit/vfs_unlink")
int unlink_exited(void *ctx)
{
	count(1);
	return 0;
}

SEC("kprobe")
int unlink_probed(void *ctx)
{
	count(2);
	return 0;
}

SEC("kretprobe")
int unlink_returned(void *ctx)
{
	count(3);
	return 0;
}

/* Attached as kprobe_multi: the manifest declares attachType trace_kprobe_multi (Debian 12's libbpf 1.1
 * loads a "kprobe" section for any kprobe attach type it is given). */
SEC("kprobe")
int unlink_matched(void *ctx)
{
	count(4);
	return 0;
}

SEC("lsm/file_open")
int file_opened(void *ctx)
{
	count(5);
	return 0;
}

SEC("fmod_ret/security_file_open")
int file_open_checked(void *ctx)
{
	count(6);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
