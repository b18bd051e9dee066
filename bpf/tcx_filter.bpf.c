// SPDX-License-Identifier: GPL-2.0
/* Two tc programs for one tcx hook, whose order matters (examples/tcx-filter):
 *   count_all   counts every packet into `counted` and hands it on (TCX_NEXT);
 *   drop_udp9   drops IPv4 UDP datagrams to port 9 (discard), counting them into `dropped`, and hands
 *               every other packet on.
 * Placed before drop_udp9, count_all sees every packet; after it, never a dropped one.
 * SEC("tc"): libbpf 1.1 (Debian 12) knows no "tcx/" sections; a tcx link takes any sched_cls program.
 * Built with scripts/build-bpf.sh (manifests name the object file). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

/* enum tcx_action_base (Linux 6.6; Debian 12's headers are 6.1). */
#define TCX_NEXT -1
#define TCX_DROP 2

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} counted SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

static void count(void *map)
{
	__u32 key = 0;
	__u64 *value = bpf_map_lookup_elem(map, &key);

	if (value)
		__sync_fetch_and_add(value, 1);
}

/* Built with -DREVISION=N, count_all's instructions (so its tag) differ and nothing else: a rebuilt object. */
#ifndef REVISION
#define REVISION 1
#endif

SEC("tc")
int count_all(struct __sk_buff *skb)
{
	if (skb->mark == 0xb7f70000 + REVISION)
		return TCX_NEXT;
	count(&counted);
	return TCX_NEXT;
}

SEC("tc")
int drop_udp9(struct __sk_buff *skb)
{
	struct iphdr ip;
	struct udphdr udp;

	if (skb->protocol != bpf_htons(ETH_P_IP) || bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return TCX_NEXT;
	if (ip.protocol != IPPROTO_UDP || ip.ihl < 5)
		return TCX_NEXT;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + ip.ihl * 4, &udp, sizeof(udp)) < 0 || udp.dest != bpf_htons(9))
		return TCX_NEXT;
	count(&dropped);
	return TCX_DROP;
}
