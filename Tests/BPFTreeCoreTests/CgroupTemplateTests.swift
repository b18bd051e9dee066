import BPFTreeCore
import BPFTreeYAML
import Testing

/// `spec.forEachCgroup` templates: decoding, validation, rendering per cgroup.
struct CgroupTemplateTests {
    static let template = """
        apiVersion: bpftree/v1
        kind: Tree
        metadata: {name: job-a-cgroups}
        spec:
          forEachCgroup: {path: jobs/A, depth: 1}
          root: jobs/A/{cgroup.id}
          entries:
            stats: {map: {type: array, valueSize: 8, maxEntries: 4}}
            work: {directory: {entries: {queue: {map: {type: queue, valueSize: 8, maxEntries: 8}}}}}
        """

    static func templateWith(_ spec: String) -> String {
        """
        apiVersion: bpftree/v1
        kind: Tree
        metadata: {name: t}
        spec:
        \(spec)
        """
    }

    @Test func aTemplateDecodesWithItsSourceAndRoot() throws {
        let manifest = try #require(try decode(Self.template).get().first)
        #expect(manifest.forEachCgroup == CgroupTemplate(source: CgroupSource(path: "jobs/A", depth: 1), root: "jobs/A/{cgroup.id}"))
    }

    @Test func instancesMoveEveryEntryBeneathTheirRoot() throws {
        let manifest = try #require(try decode(Self.template).get().first)
        let source = CgroupSource(path: "jobs/A", depth: 1)
        let cgroups = [source: [Cgroup(id: 4242, name: "w1", path: "w1"), Cgroup(id: 77, name: "w2", path: "w2")]]
        let (tree, notices) = DesiredTree.build(rendering: [manifest], cgroups: cgroups)
        let desired = try tree.get()
        #expect(notices.isEmpty)
        #expect(desired.entries.map(\.path.description) == [
            "jobs", "jobs/A", "jobs/A/4242", "jobs/A/4242/stats", "jobs/A/4242/work", "jobs/A/4242/work/queue",
            "jobs/A/77", "jobs/A/77/stats", "jobs/A/77/work", "jobs/A/77/work/queue",
        ])
        // Every instance records the template as its origin and manifest.
        #expect(desired[TreePath(["jobs", "A", "77", "stats"])]?.origin?.manifest == "job-a-cgroups")
        #expect(desired[TreePath(["jobs", "A", "77", "stats"])]?.origin?.location.line == 8)
        // No cgroups: no instances, and nothing else.
        let (none, _) = DesiredTree.build(rendering: [manifest], cgroups: [:])
        #expect(try none.get().entries.isEmpty)
    }

    @Test func aNameBpffsCannotHoldGetsANoticeAndNoSubtree() throws {
        let text = Self.template.replacing("jobs/A/{cgroup.id}", with: "jobs/A/{cgroup.name}")
        let manifest = try #require(try decode(text).get().first)
        let cgroups = [CgroupSource(path: "jobs/A", depth: 1): [Cgroup(id: 1, name: "web.service", path: "web.service"),
                                                                 Cgroup(id: 2, name: "batch", path: "batch")]]
        let (tree, notices) = DesiredTree.build(rendering: [manifest], cgroups: cgroups)
        #expect(try tree.get().declares(TreePath(["jobs", "A", "batch", "stats"])))
        #expect(notices.count == 1)
        #expect(notices.first?.category == .cgroup)
        #expect(notices.first?.message.contains("cgroup 'web.service' (id 1) of jobs/A gets no subtree") == true)
        #expect(notices.first?.message.contains("contains '.'") == true)
    }

    @Test(arguments: [
        ("  forEachCgroup: {path: jobs/A}\n  root: jobs/A/{cgroup.uid}", "unknown placeholder '{cgroup.uid}'", "spec.root", 6),
        ("  forEachCgroup: {path: jobs/A}\n  root: jobs/A", "must hold {cgroup.id} or {cgroup.name}", "spec.root", 6),
        ("  root: jobs/A/{cgroup.id}", "need spec.forEachCgroup", "spec.root", 5),
        ("  forEachCgroup: {path: jobs/A, depth: 0}\n  root: x/{cgroup.id}", "depth must be 1", "spec.forEachCgroup.depth", 5),
        ("  forEachCgroup: {path: jobs/A, depth: 9}\n  root: x/{cgroup.id}", "out of range 0...8", "spec.forEachCgroup.depth", 5),
        ("  forEachCgroup: {path: ../etc}\n  root: x/{cgroup.id}", "without '.' or '..' segments", "spec.forEachCgroup.path", 5),
        ("  forEachCgroup: {depth: 1}\n  root: x/{cgroup.id}", "missing required field 'path'", "spec.forEachCgroup.path", 5),
        ("  forEachCgroup: {path: jobs/A}", "forEachCgroup needs a spec.root", "spec.forEachCgroup", 5),
        ("  forEachCgroup: {path: jobs/A}\n  root: x/{cgroup.id", "'{' without '}'", "spec.root", 6),
    ])
    func badTemplatesAreRefusedWithLineAndField(spec: String, message: String, field: String, line: Int) {
        let found = diagnostics(Self.templateWith(spec))
        #expect(found.contains { $0.message.contains(message) && $0.field == field && $0.location.line == line },
                "\(found.map { "\($0.location) \($0.field): \($0.message)" })")
    }

    @Test func instancesOfOneTemplateShareItsNameButTwoManifestsMayNot() throws {
        let manifest = try #require(try decode(Self.template).get().first)
        var other = manifest
        other.location = BPFTreeYAML.SourceLocation(file: "other.yaml", line: 1, column: 1)
        let cgroups = [CgroupSource(path: "jobs/A", depth: 1): [Cgroup(id: 1, name: "a", path: "a"), Cgroup(id: 2, name: "b", path: "b")]]
        #expect(throws: Never.self) { try DesiredTree.build(rendering: [manifest], cgroups: cgroups).tree.get() }
        let failure = DesiredTree.build(rendering: [manifest, other], cgroups: cgroups).tree
        guard case .failure(let problems) = failure else {
            Issue.record("two manifests named alike were merged")
            return
        }
        #expect(problems.diagnostics.contains { $0.message.contains("manifest name 'job-a-cgroups' is also used") })
    }

    /// Cgroup names are someone else's: an instance that cannot be merged gets a notice, and the others
    /// (and every other manifest) converge. Names that are not UTF-8 keep their bytes.
    @Test func anOddCgroupNameCostsOnlyItsOwnSubtree() throws {
        let template = try #require(try decode(Self.template.replacingOccurrences(of: "{cgroup.id}", with: "{cgroup.name}")).get().first)
        let fixed = try #require(try decode(Self.templateWith("  root: jobs/A/taken\n  entries: {m: {map: {type: array, valueSize: 8, maxEntries: 4}}}"),
                                          file: "fixed.yaml").get().first)
        let long = String(repeating: "n", count: 255)
        let source = CgroupSource(path: "jobs/A", depth: 1)
        let names = ["w1", long, "taken", TreePath.name(raw: [0xff]), TreePath.name(raw: [0xfe]), TreePath.name(raw: [0x61, 0x2e, 0xff]), "w1"]
        let cgroups = [source: names.enumerated().map { Cgroup(id: UInt64($0.offset + 1), name: $0.element, path: $0.element) }]
        let (tree, notices) = DesiredTree.build(rendering: [template, fixed], cgroups: cgroups)
        let desired = try tree.get()
        for root in ["jobs/A/w1", "jobs/A/.xff", "jobs/A/.xfe"] {
            #expect(desired[path(root)] != nil && desired[path(root + "/stats")] != nil, "\(root)")
        }
        #expect(desired[path("jobs/A/taken/m")] != nil, "the fixed manifest is whole")
        #expect(notices.map(\.message).sorted() == [
            "cgroup '\(long)' (id 2) of jobs/A gets no subtree: its path 'jobs/A/\(long)' is 262 bytes long; the ownership ledger holds paths of up to 255 bytes",
            "cgroup 'a.\\xff' (id 6) of jobs/A gets no subtree: 'a.\\xff' contains '.', which bpffs refuses in names",
            "cgroup 'taken' (id 3) of jobs/A gets no subtree: 'jobs/A/taken' is also declared by manifest t",
            "cgroup 'w1' (id 7) of jobs/A gets no subtree: 'jobs/A/w1' is also declared by manifest job-a-cgroups",
        ].sorted(), "\(notices.map(\.message))")
    }

    @Test func theStampKeepsTheCgroupSources() throws {
        var stamp = TreeStamp(inputs: Array(repeating: 7, count: 32), live: LiveTree(), roots: [], notices: [])
        stamp.cgroupSources = [CgroupSource(path: "jobs/A", depth: 1), CgroupSource(path: "/sys/fs/cgroup/x", depth: 3)]
        #expect(TreeStamp(decoding: stamp.encoded) == stamp)
        // And the cgroups it was rendered for, with the digest of the files alone.
        stamp.filesDigest = Array(repeating: 9, count: 32)
        stamp.cgroups[stamp.cgroupSources[1]] = [Cgroup(id: 12, name: "web", path: "a/b/web"), Cgroup(id: 13, name: "db", path: "a/b/db")]
        #expect(TreeStamp(decoding: stamp.encoded) == stamp)
    }
}
