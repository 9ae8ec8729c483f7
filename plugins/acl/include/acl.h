/* SPDX-License-Identifier: Apache-2.0 */
/*
 * This file contains the acl plugin's tables, shared by its BPF program and its Swift
 * library (which flattens user rules into them; see docs/plugins.md#acl).
 *
 * Rules are found by the remote address: an LPM trie keyed by (VPC, direction, remote
 * prefix) holds, for each prefix any rule names, every rule whose remote CIDR contains
 * that prefix, in priority order. The program scans that short list for the first rule
 * whose local CIDR, protocol and ports match; no match means the endpoint's default.
 *
 * Rules and endpoint policies are keyed by the low bit of a generation that `acl_config` names:
 * a new configuration is written beside the live one and switched to by one write of
 * `acl_config`, so a packet never meets the new rules beside the old policies (the host's
 * `GenerationalConfiguration`, docs/plugins.md).
 */
#ifndef MIZAR_ACL_H
#define MIZAR_ACL_H

#include <linux/types.h>

#define ACL_OBJECT "acl.bpf.o"
#define ACL_RULES_MAP "acl_rules"
#define ACL_ENDPOINTS_MAP "acl_endpoints"
#define ACL_CONNTRACK_MAP "acl_conntrack"
#define ACL_CONFIG_MAP "acl_config"

#define ACL_MAX_PREFIXES 65536	/* distinct (VPC, direction, remote prefix) entries of one configuration */
#define ACL_MAX_RULES 32	/* rules that may cover one remote prefix */
#define ACL_MAX_ENDPOINTS 65536
/* The rules and endpoint maps hold two generations: the live one and the one being written. */
#define ACL_GENERATIONS 2
#define ACL_CONNTRACK_SIZE 262144

enum acl_direction { ACL_EGRESS = 0, ACL_INGRESS = 1 };
/* Conntrack only: a flow a divider allowed (transit hook), remembered both ways. */
#define ACL_TRANSIT 2
enum acl_action { ACL_DENY = 0, ACL_ALLOW = 1 };

/* Drop reason codes (the plugin's counters). */
enum acl_reason {
	ACL_REASON_RULE = 1,	  /* a deny rule matched */
	ACL_REASON_DEFAULT = 2,	  /* no rule matched and the endpoint's default is deny */
	ACL_REASON_TRUNCATED = 3, /* the L4 header is cut short */
};

struct acl_rules_key {
	__u32 prefixlen; /* 96 + the remote prefix length */
	__u32 generation; /* the low bit of acl_config's generation */
	__u32 vni;
	__u32 direction;
	__be32 remote;
};

struct acl_rule {
	__be32 local;	   /* the endpoint side: source at egress, destination at ingress */
	__be32 local_mask;
	__u16 port_lo;	   /* TCP/UDP destination port, or ICMP type; host order */
	__u16 port_hi;
	__u8 protocol;	   /* IPPROTO_*, 0 for any */
	__u8 action;	   /* enum acl_action */
	__u16 id;	   /* the user's rule number, for diagnostics */
};

struct acl_rule_list {
	__u32 count;
	struct acl_rule rules[ACL_MAX_RULES];
};

struct acl_endpoint_key {
	__u32 generation; /* the low bit of acl_config's generation */
	__u32 vni;
	__be32 ip;
};

/* An endpoint under policy; endpoints without one are not filtered. */
struct acl_endpoint_policy {
	__u8 default_action[2]; /* by enum acl_direction */
	__u8 pad[2];
};

/* A flow the ACL allowed, keyed as its replies will look at the opposite hook. */
struct acl_flow_key {
	__u32 vni;
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 protocol;
	__u8 direction;
	__u8 pad[2];
};

struct acl_flow {
	__u64 seen_ns;
	__u32 generation; /* whole, of the rules that allowed it: a flow any other generation allowed is judged again */
	__u32 pad;
};

struct acl_config {
	__u64 conntrack_timeout_ns; /* replies pass while the flow was seen this recently */
	__u32 generation;	    /* counts up; its low bit keys the rules and endpoint policies packets use */
	__u32 pad;
};

#endif /* MIZAR_ACL_H */
