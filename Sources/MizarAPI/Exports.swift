// Clients of the API see its address types (IPv4Address, IPv4Interface, MACAddress, VNI).
@_exported import MizarAddresses
