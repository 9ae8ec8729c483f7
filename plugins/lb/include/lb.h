/* SPDX-License-Identifier: Apache-2.0 */
/*
 * This file contains the lb plugin's tables, shared by its BPF program and its Swift
 * library (which builds the Maglev tables). A service is a VIP:port of a VPC; its
 * backends fill a Maglev lookup table of LB_MAGLEV_SIZE slots, so that a backend's
 * removal moves only the flows it held. Connections stick to their backend through an
 * affinity LRU; in NAT mode a reverse LRU gives replies the VIP back.
 *
 * Services, their Maglev tables and their backend sets belong to a configuration generation
 * that `lb_config` names: a new configuration is written beside the live one (services keyed
 * by the generation's low bit, Maglev tables and backend sets in that bit's half of their
 * tables) and switched to by one write of `lb_config`, so a packet never meets a new service
 * entry beside an old table (the host's `GenerationalConfiguration`, docs/plugins.md).
 */
#ifndef MIZAR_LB_H
#define MIZAR_LB_H

#include <linux/types.h>

#define LB_OBJECT "lb.bpf.o"
#define LB_SERVICES_MAP "lb_services"
#define LB_MAGLEV_MAP "lb_maglev"
#define LB_BACKENDS_MAP "lb_backends"
#define LB_AFFINITY_MAP "lb_affinity"
#define LB_REVERSE_MAP "lb_reverse"
#define LB_CONFIG_MAP "lb_config"

#define LB_MAGLEV_SIZE 65537 /* a prime: every skip visits every slot */
#define LB_MAX_SERVICES 32	 /* of one configuration */
#define LB_MAX_BACKENDS 65536	 /* over all services of one configuration */
#define LB_GENERATIONS 2	 /* the live configuration and the one being written */
#define LB_TABLE_SIZE 262144  /* connections remembered */

enum lb_mode {
	LB_MODE_NAT = 0,	 /* the destination becomes the backend; replies get the VIP back */
	LB_MODE_PASSTHROUGH = 1, /* the frame keeps the VIP and is steered to the backend's droplet */
};

enum lb_reason {
	LB_REASON_NO_BACKEND = 1, /* the service has no backend */
	LB_REASON_REWRITE = 2,	  /* the rewrite failed */
	LB_REASON_TRUNCATED = 3,  /* the L4 header is cut short */
};

struct lb_service_key {
	__u32 vni;
	__be32 vip;
	__be16 port;
	__u8 protocol;
	__u8 generation; /* the configuration generation's low bit */
};

struct lb_service {
	__u32 id;	   /* its place in the configuration: what affinities remember */
	__u32 table;	   /* id + generation bit * LB_MAX_SERVICES: its Maglev slots (table *
			    * LB_MAGLEV_SIZE ...) and the service of its current backends */
	__u32 mode;
	__u32 backend_set; /* changes when the backend set does: affinities are checked again */
};

/* The live configuration generation (one entry): written last, it switches every service. */
struct lb_config {
	__u32 generation;
};

/* A backend, as a Maglev slot holds it (ip 0: an empty table). */
struct lb_backend {
	__be32 ip;
	__be16 port;
	__u16 pad;
};

/* The current backends of each service: affinity to a backend no longer here is dropped. */
struct lb_backend_key {
	__u32 service; /* the service's table */
	__be32 ip;
	__be16 port;
	__u16 pad;
};

/* A client connection to a service, as the client's egress hook sees it. */
struct lb_flow_key {
	__u32 vni;
	__be32 client;
	__be32 vip;
	__be16 client_port;
	__be16 vport;
	__u8 protocol;
	__u8 pad[3];
};

struct lb_affinity {
	__u32 service;	   /* the service's id */
	__u32 backend_set; /* the service's backend set when the backend was last known current */
	struct lb_backend backend;
};

/* A backend's reply to a client (NAT mode). */
struct lb_reverse_key {
	__u32 vni;
	__be32 backend;
	__be32 client;
	__be16 backend_port;
	__be16 client_port;
	__u8 protocol;
	__u8 pad[3];
};

struct lb_reverse {
	__be32 vip;
	__be16 vport;
	__u16 pad;
};

#endif /* MIZAR_LB_H */
