// SPDX-License-Identifier: GPL-2.0
/* Drops IPv4 UDP datagrams to configured ports in both directions of an interface (examples/port-filter):
 *   xdp_drop_ports   xdp: what the interface receives;
 *   tc_drop_ports    tc (a tcx egress link): what it sends.
 * Both are one load of this object, so they count into the same `dropped` map and `.bss` counters.
 * Their configuration is global data, set by the manifest's `globals` before loading:
 *   blocked_ports    .rodata, up to four UDP destination ports (0: unused slot);
 *   enabled          .rodata, false lets everything pass;
 *   name             .rodata, a label for bpftool map dump readers.
 * Built with scripts/build-bpf.sh (manifests name the object file). */
#include <stdbool.h>
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

const volatile __u16 blocked_ports[4] = {};
const volatile bool enabled = true;
const volatile char name[16] = "port-filter";

/* Packets looked at, by direction: read with bpftool map dump of the object's .bss. */
__u64 received_seen = 0;
__u64 sent_seen = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

static bool blocked(__u16 port)
{
	if (!enabled)
		return false;
	for (int i = 0; i < 4; i++)
		if (blocked_ports[i] != 0 && bpf_htons(blocked_ports[i]) == port)
			return true;
	return false;
}

static void count_drop(void)
{
	__u32 key = 0;
	__u64 *value = bpf_map_lookup_elem(&dropped, &key);

	if (value)
		__sync_fetch_and_add(value, 1);
}

SEC("xdp")
int xdp_drop_ports(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *udp;

	__sync_fetch_and_add(&received_seen, 1);
	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return XDP_PASS;
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > end || !blocked(udp->dest))
		return XDP_PASS;
	count_drop();
	return XDP_DROP;
}

SEC("tc")
int tc_drop_ports(struct __sk_buff *skb)
{
	struct iphdr ip;
	struct udphdr udp;

	__sync_fetch_and_add(&sent_seen, 1);
	if (skb->protocol != bpf_htons(ETH_P_IP) || bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return TCX_NEXT;
	if (ip.protocol != IPPROTO_UDP || ip.ihl < 5)
		return TCX_NEXT;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + ip.ihl * 4, &udp, sizeof(udp)) < 0 || !blocked(udp.dest))
		return TCX_NEXT;
	count_drop();
	return TCX_DROP;
}
