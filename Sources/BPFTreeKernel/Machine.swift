import CBPFTreeShim

/// Facts about this machine that shape what the kernel allocates.
public enum Machine {
    /// Possible CPUs: per-CPU map values are stored once per possible CPU.
    public static let possibleCPUs = max(1, Int(bt_num_possible_cpus()))
}
