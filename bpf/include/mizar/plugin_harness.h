/* SPDX-License-Identifier: Apache-2.0 */
/*
 * This file contains the names of the plugin harness (the SDK's test core, a host for
 * plugin chains without a droplet): frames go in through test-run, the chain runs, and
 * the continuation records the context the chain left.
 */
#ifndef MIZAR_PLUGIN_HARNESS_H
#define MIZAR_PLUGIN_HARNESS_H

#include "plugin_abi.h"

#define MZ_HARNESS_OBJECT "plugin_harness.bpf.o"
#define MZ_HARNESS_INPUT_MAP "harness_input"   /* array[1] of struct mz_plugin_ctx: the context to start with */
#define MZ_HARNESS_OUTPUT_MAP "harness_output" /* array[1] of struct mz_plugin_ctx: as the chain left it */
#define MZ_HARNESS_XDP_PROG "harness_xdp"
#define MZ_HARNESS_TC_PROG "harness_tc"
#define MZ_HARNESS_INGRESS_ROOT_MAP "harness_ingress"
#define MZ_HARNESS_EGRESS_ROOT_MAP "harness_egress"
#define MZ_HARNESS_EGRESS_ROOT_TC_MAP "harness_egress_tc"
#define MZ_HARNESS_TRANSIT_ROOT_MAP "harness_transit"
#define MZ_HARNESS_CONTINUE_XDP_PROG "harness_continue_xdp"
#define MZ_HARNESS_CONTINUE_TC_PROG "harness_continue_tc"

/* The verdict a frame that went through the whole chain gets: the core would forward it. */
#define MZ_HARNESS_XDP_FORWARD 4 /* XDP_REDIRECT */
#define MZ_HARNESS_TC_FORWARD 7	 /* TC_ACT_REDIRECT */

#endif /* MIZAR_PLUGIN_HARNESS_H */
