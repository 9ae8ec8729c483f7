/* libnl-route-3 as seen from Swift: the headers MizarNet uses, nothing else. */
#ifndef CNETLINK_H
#define CNETLINK_H

#include <netlink/netlink.h>
#include <netlink/errno.h>
#include <netlink/cache.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/addr.h>
#include <netlink/route/route.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/neighbour.h>
#include <linux/if.h>
#include <linux/rtnetlink.h>
#include <linux/neighbour.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <string.h>
#include <sys/vfs.h>

/* NLM_F_* and RTNH_F_* are macros Swift sees; these need a function to reach it. */
static inline int cnl_link_add_flags_excl(void) { return NLM_F_CREATE | NLM_F_EXCL; }
static inline int cnl_replace_flags(void) { return NLM_F_CREATE | NLM_F_REPLACE; }

/* glibc hides these behind _GNU_SOURCE, which Swift's view of the C library lacks. */
extern int setns(int fd, int nstype);
extern int unshare(int flags);
static inline int cnl_setns_net(int fd) { return setns(fd, 0x40000000 /* CLONE_NEWNET */); }
static inline int cnl_unshare_net(void) { return unshare(0x40000000 /* CLONE_NEWNET */); }
/* O_PATH: resolve a path without opening the file (fstatfs works on the descriptor). */
static inline int cnl_open_path(const char *path) { return open(path, 010000000 /* O_PATH */ | O_CLOEXEC); }

/*
 * One legacy ethtool value command (ETHTOOL_[GS]TXCSUM, ...) on device `ifname` through
 * the SIOCETHTOOL ioctl of `fd`, a socket of the device's netns. Returns 0 or -1 with errno.
 */
/* struct ifreq as SIOCETHTOOL reads it; its own definition clashes between glibc and uapi headers. */
struct cnl_ifreq_ethtool {
	char name[IFNAMSIZ];
	void *data;
	char pad[sizeof(struct ifmap) - sizeof(void *)];
};

static inline int cnl_ethtool_value(int fd, const char *ifname, __u32 cmd, __u32 *data)
{
	struct ethtool_value ev = { .cmd = cmd, .data = *data };
	struct cnl_ifreq_ethtool ifr;

	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.name, ifname, IFNAMSIZ - 1);
	ifr.data = &ev;
	if (ioctl(fd, SIOCETHTOOL, &ifr) < 0)
		return -1;
	*data = ev.data;
	return 0;
}
static inline __u32 cnl_ethtool_get_txcsum(void) { return ETHTOOL_GTXCSUM; }
static inline __u32 cnl_ethtool_set_txcsum(void) { return ETHTOOL_STXCSUM; }
static inline __u32 cnl_ethtool_get_gro(void) { return ETHTOOL_GGRO; }
static inline __u32 cnl_ethtool_set_gro(void) { return ETHTOOL_SGRO; }

#endif
