// The address types live in the C-free MizarAddresses (shared with MizarAPI, the CNI plugin
// and the controller); everything that imports MizarNet keeps seeing them.
@_exported import MizarAddresses
