import BPFTreeCore
import BPFTreeTestSupport
import Testing

@Suite struct DesiredTreeTests {
    @Test func addsImplicitParentsInPathOrder() throws {
        let tree = try desired(manifest("    m: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 1}}", root: "jobs/A/x"))
        #expect(tree.entries.map(\.path.description) == ["jobs", "jobs/A", "jobs/A/x", "jobs/A/x/m"])
        #expect(tree.entries[0].isImplicit && tree.entries[0].mode == nil)
        #expect(tree.roots.map(\.description) == ["jobs/A/x"])
    }

    /// Declarations in any order, across manifests, give one tree in path order, every path findable.
    @Test func mergesManifestsInAnyOrderIntoPathOrder() throws {
        let late = manifest("    z: {directory: {}}\n    b: {directory: {}}", name: "late", root: "jobs/B")
        let early = manifest("    m: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 1}}\n    a: {directory: {}}", name: "early")
        let tree = try desired(late, early)
        let paths = tree.entries.map(\.path.description)
        #expect(paths == ["jobs", "jobs/A", "jobs/A/a", "jobs/A/m", "jobs/B", "jobs/B/b", "jobs/B/z"])
        for path in tree.entries.map(\.path) { #expect(tree[path]?.path == path) }
        #expect(tree.mapFingerprint(at: TreePath(joined: "jobs/A/m")) != nil)
        #expect(tree.mapFingerprint(at: TreePath(joined: "jobs/A/a")) == nil)
    }

    @Test func refusesAPathDeclaredTwiceNamingBothPlaces() throws {
        let one = manifest("    stats: {directory: {}}", name: "one")
        let two = manifest("    stats: {directory: {}}", name: "two")
        var manifests = try decode(one, file: "one.yaml").get()
        manifests += try decode(two, file: "two.yaml").get()
        let failure = try #require(DesiredTree.build(manifests).failure)
        let messages = failure.diagnostics.map(\.description)
        #expect(messages.contains { $0.contains("jobs/A") && $0.contains("one.yaml") && $0.hasPrefix("two.yaml") })
        #expect(messages.contains { $0.contains("jobs/A/stats") && $0.contains("one.yaml:7:5") && $0.hasPrefix("two.yaml:7:5") })
    }

    @Test func refusesTwoManifestsWithOneName() throws {
        var manifests = try decode(manifest("    a: {directory: {}}"), file: "a.yaml").get()
        manifests += try decode(manifest("    b: {directory: {}}", root: "jobs/B"), file: "b.yaml").get()
        let failure = try #require(DesiredTree.build(manifests).failure)
        #expect(failure.diagnostics.map(\.description) == ["b.yaml:1:1: metadata.name: manifest name 'job-a' is also used at a.yaml:1:1"])
    }

    @Test func refusesEntriesBeneathAMap() throws {
        var manifests = try decode(manifest("    m: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 1}}", name: "one"), file: "a.yaml").get()
        manifests += try decode(manifest("    x: {directory: {}}", name: "two", root: "jobs/A/m"), file: "b.yaml").get()
        let failure = try #require(DesiredTree.build(manifests).failure)
        #expect(failure.diagnostics.contains { $0.message.contains("beneath 'jobs/A/m'") && $0.location.file == "b.yaml" })
    }

    @Test func refusesPathsLongerThanTheLedgerHolds() throws {
        let long = String(repeating: "x", count: 250)
        let manifests = try decode(manifest("    \(long): {directory: {}}")).get()
        let failure = try #require(DesiredTree.build(manifests).failure)
        #expect(failure.diagnostics.map(\.message) == ["path 'jobs/A/\(long)' is 257 bytes long; the ownership ledger holds anchor-relative paths of up to 255 bytes"])
    }
}

extension Result {
    var failure: Failure? { if case .failure(let error) = self { error } else { nil } }
}
