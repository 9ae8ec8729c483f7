/* SPDX-License-Identifier: Apache-2.0 */
/* This file contains nothing of its own: it gathers the headers user space sees. */
#ifndef MIZAR_MIZAR_H
#define MIZAR_MIZAR_H

#include "geneve.h"
#include "stats.h"
#include "dataplane.h"
#include "transit_xdp.h"
#include "transit_agent.h"
#include "probe.h"
#include "plugin_abi.h"
#include "plugin_harness.h"
#include "trace.h"

#endif /* MIZAR_MIZAR_H */
