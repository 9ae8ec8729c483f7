import CLibBPF

/// The libbpf this process runs with.
public enum LibBPFVersion {
    public static var string: String { String(cString: libbpf_version_string()) }
}
