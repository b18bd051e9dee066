import BPFTreeCore

/// A desired tree with what a test's stand-in for the kernel layer resolved its programs and links to,
/// as the commands hold the two side by side.
struct ResolvedTree {
    var tree: DesiredTree
    var targets = ResolvedTargets()

    /// Each program's image as `image` gives it, each link's target as `link` gives it.
    init(_ tree: DesiredTree, image: (ProgramSpec) -> ProgramImage?, link: (LinkSpec) -> LinkResolution = { _ in .none }) {
        self.tree = tree
        for entry in tree.entries {
            switch entry.kind {
            case .program(let spec): targets.images[entry.path] = image(spec)
            case .link(let spec): targets.links[entry.path] = link(spec)
            case .directory, .map: break
            }
        }
    }

    func bindingProblems() -> [Diagnostic] { tree.bindingProblems(targets.images) }
    func linkProblems() -> [Diagnostic] { tree.linkProblems(targets.images) }

    func plan(_ live: LiveTree, _ ledger: Ledger = Ledger(), policies: PolicySet = .builtin) -> Plan {
        Planner.plan(desired: tree, live: live, ledger: ledger, policies: policies, targets: targets)
    }
}
