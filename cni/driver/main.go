// cnidriver runs a CNI network configuration list through libcni, the library containerd,
// CRI-O and podman embed, so that the tests drive `mizar` (and the plugins chained after it)
// the way a runtime does: prevResult threading, result caching, CHECK and DEL from the cache.
//
//	cnidriver ADD|CHECK|DEL|VERSION CONFLIST CONTAINER-ID NETNS IFNAME [CNI_ARGS]
//
// CNI_PATH (plugin directories, colon-separated) and CNI_CACHE_DIR come from the environment.
// ADD prints the result; errors print the plugin's error and exit 1.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: cnidriver ADD|CHECK|DEL|VERSION CONFLIST [CONTAINER-ID NETNS IFNAME [CNI_ARGS]]")
		os.Exit(2)
	}
	command, conflist := os.Args[1], os.Args[2]
	list, err := libcni.ConfListFromFile(conflist)
	if err != nil {
		fail(err)
	}
	cni := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(os.Getenv("CNI_PATH")), os.Getenv("CNI_CACHE_DIR"), nil)
	ctx := context.Background()
	if command == "VERSION" {
		for _, plugin := range list.Plugins {
			info, err := cni.GetVersionInfo(ctx, plugin.Network.Type)
			if err != nil {
				fail(err)
			}
			fmt.Printf("%s %s\n", plugin.Network.Type, strings.Join(info.SupportedVersions(), ","))
		}
		return
	}
	if len(os.Args) < 6 {
		fail(fmt.Errorf("%s needs CONTAINER-ID NETNS IFNAME", command))
	}
	rt := &libcni.RuntimeConf{ContainerID: os.Args[3], NetNS: os.Args[4], IfName: os.Args[5]}
	if len(os.Args) > 6 {
		for _, pair := range strings.Split(os.Args[6], ";") {
			if kv := strings.SplitN(pair, "=", 2); len(kv) == 2 {
				rt.Args = append(rt.Args, [2]string{kv[0], kv[1]})
			}
		}
	}
	if capabilities := os.Getenv("CNI_CAPABILITY_ARGS"); capabilities != "" {
		if err := json.Unmarshal([]byte(capabilities), &rt.CapabilityArgs); err != nil {
			fail(err)
		}
	}
	switch command {
	case "ADD":
		result, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail(err)
		}
		if err := result.Print(); err != nil {
			fail(err)
		}
	case "CHECK":
		err = cni.CheckNetworkList(ctx, list, rt)
	case "DEL":
		err = cni.DelNetworkList(ctx, list, rt)
	default:
		err = fmt.Errorf("unknown command %s", command)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Println(err.Error())
	os.Exit(1)
}
