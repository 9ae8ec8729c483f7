// SPDX-License-Identifier: Apache-2.0
/*
 * lb: service VIP:port -> backends by Maglev consistent hashing (include/lb.h has the
 * tables). The client's egress hook picks: a known connection keeps its backend while
 * that backend is still the service's; a new one takes the Maglev slot of its flow hash.
 * NAT mode rewrites the destination and remembers the reply's way back, which either
 * hook undoes (ingress for remote backends, egress for backends on this droplet).
 * Passthrough mode leaves the frame alone and steers it to the backend: the client's
 * egress routes it to the backend's droplet, whose ingress (the VIP is no endpoint there)
 * picks the same backend from the same Maglev table and has it delivered; the backend's
 * replies come from the VIP, which lb vouches for at its egress. Services are read under
 * the live configuration generation (lb_config), their tables and backends through the
 * service entry, so one packet sees one configuration.
 */
#include <mizar/plugin.h>

#include "lb.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_MAX_SERVICES * LB_GENERATIONS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lb_service_key);
	__type(value, struct lb_service);
} lb_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LB_MAX_SERVICES * LB_GENERATIONS * LB_MAGLEV_SIZE);
	__type(key, __u32);
	__type(value, struct lb_backend);
} lb_maglev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LB_MAX_BACKENDS * LB_GENERATIONS);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* memory for the generation being written only while it is */
	__type(key, struct lb_backend_key);
	__type(value, __u32);
} lb_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_config);
} lb_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB_TABLE_SIZE);
	__type(key, struct lb_flow_key);
	__type(value, struct lb_affinity);
} lb_affinity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LB_TABLE_SIZE);
	__type(key, struct lb_reverse_key);
	__type(value, struct lb_reverse);
} lb_reverse SEC(".maps");

static __always_inline __u32 flow_hash(const struct lb_flow_key *f)
{
	__u32 h = f->client * 0x9e3779b1u;

	h ^= (((__u32)f->client_port << 16) | f->vport) * 0x85ebca6bu;
	h ^= f->vip * 0xc2b2ae35u;
	h ^= f->protocol;
	h ^= h >> 16;
	h *= 0x7feb352du;
	h ^= h >> 15;
	return h;
}

/*
 * The backend of a connection, or NULL when the service has none. A known connection
 * keeps its backend while the service's backend set is unchanged or still holds it;
 * `*fresh_pick` says whether the backend was just chosen.
 */
static __always_inline const struct lb_backend *pick(const struct lb_flow_key *flow, const struct lb_service *svc,
						     struct lb_affinity *fresh, int *fresh_pick)
{
	struct lb_affinity *known = bpf_map_lookup_elem(&lb_affinity, flow);
	struct lb_backend_key current;
	const struct lb_backend *b;
	__u32 slot;

	*fresh_pick = 0;
	if (known && known->service == svc->id) {
		if (known->backend_set == svc->backend_set)
			return &known->backend;
		current.service = svc->table;
		current.ip = known->backend.ip;
		current.port = known->backend.port;
		current.pad = 0;
		if (bpf_map_lookup_elem(&lb_backends, &current)) {
			known->backend_set = svc->backend_set;
			return &known->backend;
		}
	}
	slot = svc->table * LB_MAGLEV_SIZE + flow_hash(flow) % LB_MAGLEV_SIZE;
	b = bpf_map_lookup_elem(&lb_maglev, &slot);
	if (!b || !b->ip)
		return NULL;
	fresh->service = svc->id;
	fresh->backend_set = svc->backend_set;
	fresh->backend = *b;
	bpf_map_update_elem(&lb_affinity, flow, fresh, BPF_ANY);
	*fresh_pick = 1;
	return &fresh->backend;
}

/* The low bit of the live configuration generation: what service keys carry. Read only by
 * frames that look a service up (a reply being given its VIP back needs none). */
static __always_inline __u8 live_generation(void)
{
	const struct lb_config *cfg = bpf_map_lookup_elem(&lb_config, &(__u32){ 0 });

	return cfg ? cfg->generation & 1 : 0;
}

/* A backend's reply (NAT mode): the client sees the VIP answer. */
static __always_inline int unreverse(struct mz_pkt *pkt, const struct iphdr *iph, __be16 sport, __be16 dport)
{
	struct lb_reverse_key rkey = {
		.vni = pkt->ctx->vni,
		.backend = iph->saddr,
		.client = iph->daddr,
		.backend_port = sport,
		.client_port = dport,
		.protocol = pkt->ctx->l4_proto,
	};
	const struct lb_reverse *rev = bpf_map_lookup_elem(&lb_reverse, &rkey);
	struct lb_reverse back;

	if (!rev)
		return MZ_CONTINUE;
	back = *rev;
	if (mz_set_ipv4_addr(pkt, 0, back.vip) || mz_set_l4_port(pkt, 0, back.vport))
		return mz_drop(pkt, LB_REASON_REWRITE);
	return MZ_CONTINUE;
}

static __always_inline int lb(struct mz_pkt *pkt)
{
	struct mz_plugin_ctx *c = pkt->ctx;
	struct lb_service_key skey = {};
	struct lb_reverse_key rkey = {};
	struct lb_flow_key flow = {};
	const struct lb_backend *b;
	const struct lb_service *svc;
	struct lb_affinity fresh;
	struct lb_reverse back;
	struct iphdr *iph;
	__be16 sport, dport;
	int fresh_pick;

	if ((c->flags & (MZ_CTX_EXTERNAL | MZ_CTX_FRAGMENT)) ||
	    (c->l4_proto != IPPROTO_TCP && c->l4_proto != IPPROTO_UDP))
		return MZ_CONTINUE;
	iph = mz_ipv4(pkt);
	if (!iph || mz_ports(pkt, &sport, &dport) < 0)
		return mz_drop(pkt, LB_REASON_TRUNCATED);
	skey.vni = c->vni;
	skey.protocol = c->l4_proto;
	if (c->flags & MZ_CTX_FOREIGN_SOURCE) {
		skey.generation = live_generation();
		/* A passthrough backend answers from the VIP: vouch for it if it is one of the VIP's. */
		skey.vip = iph->saddr;
		skey.port = sport;
		svc = bpf_map_lookup_elem(&lb_services, &skey);
		if (svc && svc->mode == LB_MODE_PASSTHROUGH) {
			struct lb_backend_key me = { .service = svc->table, .ip = c->endpoint_ip, .port = sport };

			if (bpf_map_lookup_elem(&lb_backends, &me))
				c->flags |= MZ_CTX_SOURCE_VOUCHED;
		}
		return MZ_CONTINUE;
	}
	if (c->hook != MZ_HOOK_EGRESS && !(c->flags & MZ_CTX_UNKNOWN_DESTINATION))
		return unreverse(pkt, iph, sport, dport);
	skey.generation = live_generation();

	skey.vip = iph->daddr;
	skey.port = dport;
	svc = bpf_map_lookup_elem(&lb_services, &skey);
	if (!svc) /* not to a service: maybe a local backend's reply */
		return c->hook == MZ_HOOK_EGRESS ? unreverse(pkt, iph, sport, dport) : MZ_CONTINUE;
	if (c->hook != MZ_HOOK_EGRESS && svc->mode != LB_MODE_PASSTHROUGH)
		return MZ_CONTINUE;
	flow.vni = c->vni;
	flow.client = iph->saddr;
	flow.vip = iph->daddr;
	flow.client_port = sport;
	flow.vport = dport;
	flow.protocol = c->l4_proto;
	b = pick(&flow, svc, &fresh, &fresh_pick);
	if (!b)
		return mz_drop(pkt, LB_REASON_NO_BACKEND);
	if (svc->mode == LB_MODE_PASSTHROUGH) {
		c->flags |= MZ_CTX_STEER;
		c->steer_ip = b->ip;
		return MZ_CONTINUE;
	}
	rkey.vni = c->vni;
	rkey.backend = b->ip;
	rkey.client = flow.client;
	rkey.backend_port = b->port;
	rkey.client_port = flow.client_port;
	rkey.protocol = flow.protocol;
	if (fresh_pick) { /* the reply's way back, once per connection and backend */
		back.vip = flow.vip;
		back.vport = flow.vport;
		back.pad = 0;
		bpf_map_update_elem(&lb_reverse, &rkey, &back, BPF_ANY);
	}
	if (mz_set_ipv4_addr(pkt, 1, rkey.backend) || mz_set_l4_port(pkt, 1, rkey.backend_port))
		return mz_drop(pkt, LB_REASON_REWRITE);
	return MZ_CONTINUE;
}

MZ_PLUGIN(lb)
