#!/usr/bin/python3
"""A small CRI client: drives containerd's CRI service over its socket the way kubelet does.

    cri.py SOCKET version
    cri.py SOCKET run NAME NAMESPACE [COUNT]   -> one line per pod: id, seconds RunPodSandbox took
    cri.py SOCKET status ID                    -> JSON: state, ip, netns
    cri.py SOCKET stop ID | remove ID

The stubs are generated from cri.proto (beside this file) with grpc_tools at first use.
Needs Debian's python3-grpcio and python3-grpc-tools (/usr/bin/python3).
"""
import json
import os
import sys
import tempfile
import time

import grpc
from grpc_tools import protoc

HERE = os.path.dirname(os.path.abspath(__file__))


def stubs():
    out = tempfile.mkdtemp(prefix="mizar-cri-")
    rc = protoc.main(["protoc", "-I" + HERE, "--python_out=" + out, "--grpc_python_out=" + out, os.path.join(HERE, "cri.proto")])
    if rc != 0:
        sys.exit("protoc failed")
    sys.path.insert(0, out)
    import cri_pb2
    import cri_pb2_grpc
    return cri_pb2, cri_pb2_grpc


def main():
    socket, command, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    pb, rpc = stubs()
    runtime = rpc.RuntimeServiceStub(grpc.insecure_channel("unix://" + socket))
    if command == "version":
        print(runtime.Version(pb.VersionRequest(version="v1"), timeout=30))
    elif command == "run":
        name, namespace = args[0], args[1]
        count = int(args[2]) if len(args) > 2 else 1
        for i in range(count):
            pod = name if count == 1 else "%s-%d" % (name, i)
            config = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name=pod, uid="uid-" + pod, namespace=namespace, attempt=0),
                                         hostname=pod, labels={"app": name})
            start = time.monotonic()
            reply = runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config), timeout=120)
            print(reply.pod_sandbox_id, "%.6f" % (time.monotonic() - start), flush=True)
    elif command == "status":
        reply = runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=args[0], verbose=True), timeout=30)
        info = json.loads(reply.info.get("info", "{}"))
        netns = info.get("netNamespacePath") or ""
        if not netns:
            for ns in info.get("runtimeSpec", {}).get("linux", {}).get("namespaces", []):
                if ns.get("type") == "network":
                    netns = ns.get("path", "")
        print(json.dumps({"state": pb.PodSandboxState.Name(reply.status.state), "ip": reply.status.network.ip, "netns": netns}))
    elif command == "stop":
        runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=args[0]), timeout=60)
    elif command == "remove":
        runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=args[0]), timeout=60)
    else:
        sys.exit("unknown command " + command)


if __name__ == "__main__":
    main()
