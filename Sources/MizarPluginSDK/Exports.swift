// What a plugin author needs, from one import: descriptors and chains, packet builders,
// addresses, and the BPF types the harness returns.
@_exported import MizarBPF
@_exported import MizarNet
@_exported import MizarPacket
@_exported import MizarPlugins
