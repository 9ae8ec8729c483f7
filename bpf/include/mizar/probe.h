/* SPDX-License-Identifier: Apache-2.0 */
/* This file contains what the probe object shares with user space: names and knobs. */
#ifndef MIZAR_PROBE_H
#define MIZAR_PROBE_H

/*
 * The probe object holds small programs that check kernel capabilities
 * (mizarctl bpf probe), serve as benchmark baselines and drive traffic
 * generation with BPF_F_TEST_XDP_LIVE_FRAMES.
 */
#define MZ_PROBE_OBJECT "probe.bpf.o"
#define MZ_PROBE_VERDICT_PROG "probe_verdict"   /* returns the load-time verdict */
#define MZ_PROBE_TAIL_PROG "probe_tail"         /* tail-calls slot 0 of probe_chain */
#define MZ_PROBE_REDIRECT_PROG "probe_redirect" /* redirects to the load-time ifindex */
#define MZ_PROBE_CHAIN_MAP "probe_chain"
#define MZ_PROBE_VERDICT_VAR "probe_verdict_value"
#define MZ_PROBE_IFINDEX_VAR "probe_redirect_ifindex"
/* Verdict probe_tail returns when the tail call did not happen. */
#define MZ_PROBE_TAIL_MISSED 0 /* XDP_ABORTED */

#endif /* MIZAR_PROBE_H */
