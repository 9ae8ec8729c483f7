// SPDX-License-Identifier: Apache-2.0
/*
 * acl: allow/deny by VPC, network, source/destination CIDR, protocol, port range,
 * direction and priority (include/acl.h explains the tables). Replies of allowed flows
 * pass through a conntrack LRU; endpoints without a policy are not filtered; external
 * frames (not the overlay's) are left to other plugins.
 */
#include <mizar/plugin.h>

#include "acl.h"

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, ACL_MAX_PREFIXES * ACL_GENERATIONS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct acl_rules_key);
	__type(value, struct acl_rule_list);
} acl_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ACL_MAX_ENDPOINTS * ACL_GENERATIONS);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* memory for the generation being written only while it is */
	__type(key, struct acl_endpoint_key);
	__type(value, struct acl_endpoint_policy);
} acl_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ACL_CONNTRACK_SIZE);
	__type(key, struct acl_flow_key);
	__type(value, struct acl_flow);
} acl_conntrack SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct acl_config);
} acl_config SEC(".maps");

/* A flow entry is rewritten at most this often while its packets keep coming. */
#define ACL_REFRESH_NS 1000000000ULL

/* Records that `flow` may pass, unless that is already known (and fresh). */
static __always_inline void remember(const struct acl_flow_key *flow, __u64 now, __u32 generation)
{
	struct acl_flow *seen = bpf_map_lookup_elem(&acl_conntrack, flow), fresh = { .seen_ns = now, .generation = generation };

	if (seen && seen->generation == generation && now - seen->seen_ns < ACL_REFRESH_NS)
		return;
	bpf_map_update_elem(&acl_conntrack, flow, &fresh, BPF_ANY);
}

/* First matching rule's action, or -1. */
static __always_inline int match(const struct acl_rule_list *list, __be32 local, __u8 proto, __u16 port)
{
	int i;

	for (i = 0; i < ACL_MAX_RULES; i++) {
		const struct acl_rule *r = &list->rules[i];

		if (i >= list->count)
			break;
		if ((local & r->local_mask) != r->local)
			continue;
		if (r->protocol && r->protocol != proto)
			continue;
		if (port < r->port_lo || port > r->port_hi)
			continue;
		return r->action;
	}
	return -1;
}

static __always_inline int acl(struct mz_pkt *pkt)
{
	const struct mz_plugin_ctx *c = pkt->ctx;
	struct acl_flow_key flow = {}, reply;
	const struct acl_endpoint_policy *policy;
	const struct acl_rule_list *list;
	const struct acl_config *config;
	struct acl_endpoint_key ep;
	struct acl_rules_key key;
	struct acl_flow *seen;
	struct mz_icmphdr *icmp;
	struct iphdr *iph;
	__u32 dir = c->hook == MZ_HOOK_EGRESS ? ACL_EGRESS : ACL_INGRESS;
	__u16 port = 0;
	__u32 generation;
	__u64 now;
	int action;

	if (c->flags & MZ_CTX_EXTERNAL)
		return MZ_CONTINUE;
	iph = mz_ipv4(pkt);
	if (!iph)
		return mz_drop(pkt, ACL_REASON_TRUNCATED);
	flow.vni = c->vni;
	flow.saddr = iph->saddr;
	flow.daddr = iph->daddr;
	flow.protocol = c->l4_proto;
	/* At a divider (transit) a flow is judged as ingress of its destination; it and its
	 * replies are remembered under a direction of their own. */
	flow.direction = c->hook == MZ_HOOK_TRANSIT ? ACL_TRANSIT : dir;
	if (!(c->flags & MZ_CTX_FRAGMENT) && mz_ports(pkt, &flow.sport, &flow.dport) < 0 &&
	    (c->l4_proto == IPPROTO_TCP || c->l4_proto == IPPROTO_UDP))
		return mz_drop(pkt, ACL_REASON_TRUNCATED);
	icmp = mz_icmp(pkt);
	port = icmp ? icmp->type : bpf_ntohs(flow.dport);
	if (icmp) /* an echo flow is its id and type: a request never passes as a reply */
		flow.dport = icmp->type;

	/* A flow allowed before, either way: its packets and its replies pass. */
	now = bpf_ktime_get_coarse_ns(); /* ticks are plenty for timeouts of seconds */
	config = bpf_map_lookup_elem(&acl_config, &(__u32){ 0 });
	generation = config ? config->generation : 0;
	ep.generation = generation & 1; /* keys carry the low bit: the live and the next side by side */
	/* Only what the rules in force allowed: a flow remembered under any other generation (a
	 * packet judged while the switch happened, a flush that never came) is judged again. */
	seen = bpf_map_lookup_elem(&acl_conntrack, &flow);
	if (seen && config && seen->generation == generation && now - seen->seen_ns < config->conntrack_timeout_ns) {
		if (now - seen->seen_ns > ACL_REFRESH_NS)
			seen->seen_ns = now;
		return MZ_CONTINUE;
	}

	ep.vni = c->vni;
	/* The endpoint the frame belongs to, as the core names it (its address otherwise). */
	ep.ip = c->endpoint_ip ? c->endpoint_ip : dir == ACL_EGRESS ? iph->saddr : iph->daddr;
	policy = bpf_map_lookup_elem(&acl_endpoints, &ep);
	if (!policy)
		return MZ_CONTINUE;
	key.prefixlen = 96 + 32;
	key.generation = ep.generation;
	key.vni = c->vni;
	key.direction = dir;
	key.remote = dir == ACL_EGRESS ? iph->daddr : iph->saddr;
	list = bpf_map_lookup_elem(&acl_rules, &key);
	action = list ? match(list, ep.ip, c->l4_proto, port) : -1;
	if (action == ACL_DENY)
		return mz_drop(pkt, ACL_REASON_RULE);
	if (action < 0 && policy->default_action[dir & 1] != ACL_ALLOW)
		return mz_drop(pkt, ACL_REASON_DEFAULT);

	/* Allowed: its replies will come the other way, addresses and ports swapped. */
	reply = flow;
	reply.saddr = flow.daddr;
	reply.daddr = flow.saddr;
	reply.sport = flow.dport;
	reply.dport = flow.sport;
	if (icmp) { /* echo request (8) and reply (0) */
		reply.sport = flow.sport;
		reply.dport = flow.dport ^ MZ_ICMP_ECHO;
	}
	reply.direction = c->hook == MZ_HOOK_TRANSIT ? ACL_TRANSIT : dir ^ 1;
	remember(&flow, now, generation);
	remember(&reply, now, generation);
	return MZ_CONTINUE;
}

MZ_PLUGIN(acl)
