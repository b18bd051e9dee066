import CBPFTreeShim

/// Facts about this machine that shape what the kernel allocates.
public enum Machine {
    /// Possible CPUs: per-CPU map values are stored once per possible CPU.
    public static let possibleCPUs = max(1, Int(bt_num_possible_cpus()))

    /// Returns memory the process has freed to the kernel (`malloc_trim`), e.g. before a second large
    /// phase of a run, so that peak RSS is not the sum of both.
    public static func releaseFreeMemory() { bt_release_free_memory() }
}
