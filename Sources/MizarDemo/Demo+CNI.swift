import Foundation
import MizarNet
import MizarTopology

extension Demo {
    /// A container plugged the way containerd plugs one: the CNI plugin `mizar` run with the
    /// CNI variables and a network configuration, then pinged, then DEL.
    func cniStep(mizar: String) throws {
        print("\na container plugged as a runtime plugs one: the CNI plugin mizar, on hosta, network front")
        let pod = try lab.endpointNamespace("pod")
        let config = #"{"cniVersion":"1.0.0","name":"demo","type":"mizar","network":"front","socket":"\#(lab.host("hosta").socket)"}"#
        func cni(_ command: String) throws -> CommandResult {
            print("$ echo '\(config)' | CNI_COMMAND=\(command) CNI_CONTAINERID=pod-1 CNI_NETNS=\(pod.path) CNI_IFNAME=eth0 mizar")
            let result = try runCommand([mizar], environment: ["CNI_COMMAND": command, "CNI_CONTAINERID": "pod-1", "CNI_NETNS": pod.path,
                                                               "CNI_IFNAME": "eth0", "CNI_PATH": "/usr/lib/cni"], input: config)
            guard result.status == 0 else { throw DemoError("mizar \(command) failed: \(result.output)") }
            return result
        }
        let add = try cni("ADD")
        print(add.output, terminator: "")
        let pings = pingReplies(try runCommand(["ping", "-c", "3", "-i", "0.2", "-W", "1", "10.0.1.2"], in: pod).output)
        print("  ping pod -> a1 (10.0.1.2, same droplet): \(pings)/3 replies")
        _ = try cni("DEL")
        print("  DEL: endpoint, veth and address gone")
    }
}
