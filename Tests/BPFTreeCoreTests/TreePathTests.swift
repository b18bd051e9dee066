import BPFTreeCore
import Testing

/// TreePath keeps one string; these pin down that it still behaves as a list of names.
struct TreePathTests {
    @Test func namesParentAncestorsAndPrefixes() {
        let p = path("jobs/A/stats")
        #expect(p.components == ["jobs", "A", "stats"] && p.depth == 3 && p.name == "stats")
        #expect(p.parent == path("jobs/A") && path("jobs").parent == .anchor && TreePath.anchor.depth == 0)
        #expect(p.ancestors == [path("jobs"), path("jobs/A")])
        #expect(p.prefix(0) == .anchor && p.prefix(2) == path("jobs/A") && p.prefix(5) == p)
        #expect(TreePath.anchor.appending("x") == path("x") && path("x").appending("y") == path("x/y"))
        #expect(TreePath(joined: "a//b/") == path("a/b") && TreePath(joined: "") == .anchor)
    }

    @Test func descendantsAreWholeNamesBelow() {
        #expect(path("jobs/A/x").isDescendant(of: path("jobs/A")))
        #expect(!path("jobs/AB").isDescendant(of: path("jobs/A")), "a longer name is not a child")
        #expect(!path("jobs/A").isDescendant(of: path("jobs/A")))
        #expect(path("jobs").isDescendant(of: .anchor) && !TreePath.anchor.isDescendant(of: .anchor))
    }

    @Test(arguments: [
        ("a", "a/b", true), ("a/b", "a-b", true), ("a-b", "a/b", false), ("a/b", "ab", true),
        ("a/z", "aa", true), ("b", "a/z", false), ("a", "a", false), ("", "a", true),
    ])
    func orderIsByNameSoParentsComeRightBeforeTheirChildren(_ a: String, _ b: String, _ expected: Bool) {
        #expect((path(a) < path(b)) == expected)
        // The order a list of names gives.
        #expect(path(a).components.lexicographicallyPrecedes(path(b).components) == expected)
    }
}
