import BPFTreeCore
import BPFTreeYAML
import Foundation
import Testing

/// The shipped examples and policies decode, merge and pass the policy written for them (what the README
/// runs): the platform policy, the built-in one for containers, the network and tracing policies.
@Suite struct ExamplesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    static func text(_ path: String) throws -> String { try String(contentsOfFile: root + "/" + path, encoding: .utf8) }

    @Test(arguments: ["examples/job-a.yaml", "examples/platform.yaml", "examples/cgroups/job-a-cgroups.yaml", "examples/job-stats/job-stats.yaml",
                      "examples/containers/tenant.yaml", "examples/xdp-count/xdp-count.yaml",
                      "examples/unlink-count/unlink-count.yaml", "examples/unlink-count/unlink-multi.yaml",
                      "examples/task-iter/task-iter.yaml", "examples/sk-lookup-count/sk-lookup-count.yaml",
                      "examples/tcx-filter/tcx-filter.yaml"])
    func anExampleDecodesAndPassesThePlatformPolicy(_ path: String) throws {
        // unlink-multi.yaml counts into unlink-count.yaml's map: they are applied together.
        let text = path.hasSuffix("unlink-multi.yaml") ? try Self.text("examples/unlink-count/unlink-count.yaml") + "---\n" + Self.text(path)
            : try Self.text(path)
        let manifests = try decode(text, file: path).get()
        let rendered = DesiredTree.build(rendering: manifests, cgroups: [CgroupSource(path: "jobs/A", depth: 1): [Cgroup(id: 9, name: "w", path: "w")]])
        let tree = try rendered.tree.get()
        let policy = path.contains("xdp") || path.contains("sk-lookup") || path.contains("tcx") ? "policies/network.yaml" : path.contains("task-iter") || path.contains("unlink") ? "policies/tracing.yaml" : "policies/platform.yaml"
        let policies = try policySet(try Self.text(policy))
        let violations = PolicyCheck.violations(tree, path.contains("containers") ? .builtin : policies, possibleCPUs: 4)
        #expect(violations.isEmpty, "\(violations)")
    }

    @Test func theShippedPoliciesDecode() throws {
        _ = try policySet(try Self.text("policies/platform.yaml"))
        _ = try policySet(try Self.text("policies/default.yaml"))
        _ = try policySet(try Self.text("policies/network.yaml"))
        _ = try policySet(try Self.text("policies/tracing.yaml"))
    }
}
