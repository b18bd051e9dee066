import BPFTreeCore
import BPFTreeTestSupport
import Foundation
import Testing

@Suite struct PolicyTests {
    static func policy(_ scopes: String, name: String = "platform") -> String {
        """
        apiVersion: bpftree/v1
        kind: Policy
        metadata: {name: \(name)}
        spec:
          scopes:
        \(scopes)
        """
    }

    static let platform = policy("""
            - paths: ["jobs/*"]
              mapTypes: [array, hash]
              maxEntries: 1024
              maxMapMemory: 64Ki
              maxScopeMemory: 100Ki
              maxMode: "0755"
              uids: [0, "1000-1999"]
              gids: [0]
              onIncompatible: migrate
              allowOnIncompatible: [fail]
              prune: owned
              protect: ["jobs/*/config"]
              ignore: ["jobs/*/scratch"]
        """)

    @Test(arguments: [
        ("jobs/*", "jobs/A", true), ("jobs/*", "jobs", false), ("jobs/*", "jobs/A/x", false),
        ("jobs/**", "jobs", true), ("jobs/**", "jobs/A/x/y", true), ("**/stats", "jobs/A/stats", true),
        ("jobs/a?c*", "jobs/abcdef", true), ("jobs/a?c*", "jobs/ac", false), ("**", "x", true),
    ])
    func patternsMatchByPathSegment(_ pattern: String, _ candidate: String, _ expected: Bool) throws {
        #expect(try PathPattern.parse(pattern).get().matches(path(candidate)) == expected)
    }

    @Test func aScopeGovernsTheSubtreeOfWhatItMatchesAndTheMostSpecificWins() throws {
        let set = try policySet(Self.platform, Self.policy("""
                - paths: ["jobs/special"]
                  prune: none
            """, name: "special"))
        #expect(set.scope(for: path("jobs/A/x/y"))?.policy == "platform")
        #expect(set.scope(for: path("jobs/special/x"))?.policy == "special")
        #expect(set.scope(for: path("other")) == nil)
        #expect(set.scope(for: .anchor) == nil)
        #expect(PolicySet.builtin.scope(for: .anchor) != nil, "** covers the anchor itself: a manifest may be rooted there")
        #expect(set.isIgnored(path("jobs/A/scratch/z")))
        #expect(set.scope(for: path("jobs/A"))?.protects(path("jobs/A/config")) == true)
    }

    @Test func decodesEveryField() throws {
        let scope = try #require(try policySet(Self.platform).scopes.first)
        #expect(scope.mapTypes == [.array, .hash])
        #expect(scope.maxEntries == 1024 && scope.maxMapMemory == 65536 && scope.maxScopeMemory == 102_400)
        #expect(scope.maxMode == 0o755)
        #expect(scope.uids == [IDRange(0, 0), IDRange(1000, 1999)])
        #expect(scope.onIncompatible == .migrate && scope.allowOnIncompatible == [.fail] && scope.prune == .owned)
        #expect(scope.location.description == "p0.yaml:6:7")
    }

    @Test func theShippedDefaultPolicyIsTheBuiltIn() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("policies/default.yaml")
        let text = try String(contentsOf: file, encoding: .utf8)
        let shipped = try #require(try policySet(text).scopes.first)
        var builtin = try #require(PolicySet.builtin.scopes.first)
        builtin.location = shipped.location
        builtin.policy = shipped.policy
        #expect(shipped == builtin)
    }

    static let badPolicies: [(String, String)] = [
        ("    - paths: []", "spec.scopes[0].paths: a scope needs at least one path pattern"),
        ("    - paths: [\"/abs\"]", "spec.scopes[0].paths[0]: absolute pattern '/abs'"),
        ("    - paths: [\"a/../b\"]", "spec.scopes[0].paths[0]: in 'a/../b': '..' is not allowed"),
        ("    - paths: [\"a**\"]", "'**' must be a whole path segment"),
        ("    - {paths: [a], mapTypes: [hsah]}", "unknown map type 'hsah'; did you mean 'hash'?"),
        ("    - {paths: [a], maxEntries: -1}", "spec.scopes[0].maxEntries: -1 is out of range"),
        ("    - {paths: [a], maxMapMemory: 12Zi}", "expected a byte size such as 65536"),
        ("    - {paths: [a], maxMode: \"0999\"}", "is not an octal mode"),
        ("    - {paths: [a], uids: [\"5-2\"]}", "'5-2' is not an id or a range"),
        ("    - {paths: [a], onIncompatible: swap}", "'swap' is not one of fail, replace, migrate"),
        ("    - {paths: [a], prune: all}", "'all' is not one of none, owned"),
        ("    - {paths: [a], purne: owned}", "unknown field 'purne'; did you mean 'prune'?"),
        ("    - {mapTypes: [hash]}", "spec.scopes[0].paths: missing required field 'paths'"),
        ("    - paths: a", "spec.scopes[0].paths: expected a list, found 'a'"),
    ]

    @Test(arguments: badPolicies)
    func malformedPoliciesAreRefusedWithLocationAndField(_ scope: String, _ message: String) {
        let found = policyDiagnostics(Self.policy(scope))
        #expect(found.count == 1, "\(found)")
        #expect(found.first.map { $0.description.contains(message) } == true, "\(found)")
        #expect(found.first?.location.file == "p0.yaml")
    }

    @Test func aTreeDocumentGivenAsAPolicySaysWhichOptionLoadsIt() {
        let found = policyDiagnostics(manifest("    a: {directory: {}}"))
        #expect(found.map(\.message).contains("a 'Tree' document here; Tree documents are loaded with -f/--file, this option takes 'Policy'"))
    }

    @Test func conflictingPoliciesAreRefusedNamingBoth() {
        let found = policyDiagnostics(Self.platform, Self.policy("    - paths: [\"jobs/*\"]", name: "platform"))
        #expect(found.map(\.description) == [
            "p1.yaml:1:1: metadata.name: policy name 'platform' is also used at p0.yaml:1:1",
            "p1.yaml:6:7: spec.scopes.paths: conflicting policies: scope path 'jobs/*' is also governed by policy 'platform' scope jobs/* (p0.yaml:6:7); give each subtree one scope",
        ])
    }

    @Test func everyKindOfViolationIsReportedWithTheManifestLocationAndTheRule() throws {
        let tree = try desired(manifest("""
                a: {map: {type: lru_hash, keySize: 4, valueSize: 4, maxEntries: 10}}
                b: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 4096}}
                c: {map: {type: array, valueSize: 8192, maxEntries: 16}}
                d: {directory: {mode: "0777"}}
                e: {directory: {uid: 5000, gid: 7}}
                f: {map: {type: array, valueSize: 8, maxEntries: 1}, onIncompatible: replace}
                scratch: {directory: {}}
            """), manifest("    x: {directory: {}}", name: "other", root: "elsewhere"))
        let found = PolicyCheck.violations(tree, try policySet(Self.platform), possibleCPUs: 4).sorted { $0.location < $1.location }
        let rule = "refused by policy 'platform' scope jobs/* (p0.yaml:6:7)"
        #expect(found.map(\.description) == [
            "m0.yaml:7:5: spec.entries.a.map.type: jobs/A/a: map type lru_hash is not allowed; \(rule): mapTypes [array, hash]",
            "m0.yaml:8:5: spec.entries.b.map.maxEntries: jobs/A/b: maxEntries 4096 is above the limit; \(rule): maxEntries 1024",
            "m0.yaml:8:5: spec.entries.b.map: jobs/A/b: estimated memory 256 KiB is above the per-map limit; \(rule): maxMapMemory 64 KiB",
            "m0.yaml:8:5: spec.entries.b.map: jobs/A/b: the maps of the scope need an estimated 256.6 KiB with this one, above the limit; \(rule): maxScopeMemory 100 KiB",
            "m0.yaml:9:5: spec.entries.c.map: jobs/A/c: estimated memory 128 KiB is above the per-map limit; \(rule): maxMapMemory 64 KiB",
            "m0.yaml:10:5: spec.entries.d.mode: jobs/A/d: mode 0777 has bits above the ceiling; \(rule): maxMode 0755",
            "m0.yaml:11:5: spec.entries.e.uid: jobs/A/e: uid 5000 is not allowed; \(rule): uids 0, 1000-1999",
            "m0.yaml:11:5: spec.entries.e.gid: jobs/A/e: gid 7 is not allowed; \(rule): gids 0",
            "m0.yaml:12:5: spec.entries.f.onIncompatible: jobs/A/f: onIncompatible 'replace' is not allowed; \(rule): onIncompatible migrate, allowOnIncompatible [fail, migrate]",
            "m0.yaml:13:5: spec.entries.scratch: jobs/A/scratch: the path is ignored; \(rule): ignore",
            "m1.yaml:5:3: spec: elsewhere: outside every policy scope; the policies govern only jobs/*; add a scope or move the entry",
            "m1.yaml:7:5: spec.entries.x: elsewhere/x: outside every policy scope; the policies govern only jobs/*; add a scope or move the entry",
        ])
    }

    /// A tenant's scope bounds the cgroups its links may attach to: its own subtree, not the machine's root.
    @Test func aScopesCgroupsBoundWhatItsLinksAttachTo() throws {
        let policy = """
            apiVersion: bpftree/v1
            kind: Policy
            metadata: {name: tenant}
            spec:
              scopes:
                - paths: ["jobs/**"]
                  cgroups: ["jobs/A/**", "/sys/fs/cgroup/jobs/A/*"]
            """
        func links(_ cgroups: [String]) -> String {
            manifest("    p: {program: {object: x.o, name: count}}\n" + cgroups.enumerated().map {
                "    l\($0.offset): {link: {program: jobs/A/p, cgroup: \"\($0.element)\", attachType: cgroup_inet_egress}}"
            }.joined(separator: "\n"))
        }
        let allowed = try desired(links(["jobs/A/w1", "jobs/A/w1/x", "/sys/fs/cgroup/jobs/A/w2/"]))
        #expect(PolicyCheck.violations(allowed, try policySet(policy), possibleCPUs: 4).isEmpty)
        let refused = try desired(links(["/", "/sys/fs/cgroup", "jobs/B/w1", "/sys/fs/cgroup/jobs/A/w2/deeper"]))
        let found = PolicyCheck.violations(refused, try policySet(policy), possibleCPUs: 4).map(\.description)
        #expect(found.count == 4 && found.allSatisfy { $0.contains("is not one this scope may attach to") && $0.hasSuffix("cgroups [jobs/A/**, /sys/fs/cgroup/jobs/A/*]") },
                "\(found)")
        #expect(found.first?.hasPrefix("m0.yaml:8:5: spec.entries.l0.link.cgroup: jobs/A/l0: cgroup '/' is not one") == true, "\(found)")
        guard case .failure(let bad) = policyResult([policy.replacingOccurrences(of: "\"jobs/A/**\"", with: "\"jobs/../x\"")]) else {
            Issue.record("a cgroup pattern with '..' was accepted")
            return
        }
        #expect(bad.diagnostics.map(\.field) == ["spec.scopes[0].cgroups[0]"], "\(bad.diagnostics)")
    }

    @Test func memoryEstimatesFollowTheDocumentedFormula() {
        #expect(MapSpec(type: .array, keySize: 4, valueSize: 5, maxEntries: 10).estimatedMemory(possibleCPUs: 4) == 80)
        #expect(MapSpec(type: .hash, keySize: 4, valueSize: 8, maxEntries: 10).estimatedMemory(possibleCPUs: 4) == 640)
        #expect(MapSpec(type: .percpuArray, keySize: 4, valueSize: 8, maxEntries: 10).estimatedMemory(possibleCPUs: 4) == 400)
        #expect(MapSpec(type: .percpuHash, keySize: 4, valueSize: 8, maxEntries: 10).estimatedMemory(possibleCPUs: 2) == 800)
        #expect(MapSpec(type: .ringbuf, keySize: 0, valueSize: 0, maxEntries: 4096).estimatedMemory(possibleCPUs: 2) == 4096)
    }
}
