import CBPFTreeShim

/// Signals that reach the reconcile service before swift-service-lifecycle handles them (its handlers
/// are installed a few milliseconds after start): counted instead of killing the process, then acted on
/// by the service (see `Reconciler`).
public enum StartupSignals {
    /// Call first thing in `main`, only for the long-running service.
    public static func hold() { bt_hold_signals() }

    /// Whether a SIGTERM or SIGINT came before the service's own handling.
    public static var stopRequested: Bool { bt_held_signal_count(1) > 0 }
    /// SIGHUPs counted so far.
    public static var hangups: Int { Int(bt_held_signal_count(0)) }
}
