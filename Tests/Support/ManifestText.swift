/// Manifest text shared by the pure and the kernel tests.

/// A manifest with `entries` (YAML, indented for `spec.entries`) under root `jobs/A`.
public func manifest(_ entries: String, name: String = "job-a", root: String = "jobs/A") -> String {
    """
    apiVersion: bpftree/v1
    kind: Tree
    metadata: {name: \(name)}
    spec:
      root: \(root)
      entries:
    \(entries)
    """
}
