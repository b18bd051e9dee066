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

    @Test func namesAreBytesSoNFCAndNFDAreTwoPaths() {
        let nfc = path("jobs/caf\u{e9}"), nfd = path("jobs/cafe\u{301}")
        #expect("caf\u{e9}" == "cafe\u{301}", "Swift's String equality is by canonical equivalence")
        #expect(nfc != nfd && Set([nfc, nfd]).count == 2 && [nfc: 1, nfd: 2].count == 2)
    }

    @Test func aNameThatIsNotUTF8RoundTripsThroughItsEscapedForm() {
        let raw: [UInt8] = [0x73, 0xff, 0xc3, 0xa9, 0xe2, 0x82, 0x78]  // s, bad, é, a cut-off sequence, x
        let name = TreePath.name(raw: raw)
        #expect(name == "s.xff\u{e9}.xe2.x82x")
        #expect(TreePath.rawName(name) == raw)
        #expect(TreePath.rawName("plain") == Array("plain".utf8) && TreePath.name(raw: Array("plain".utf8)) == "plain")
        #expect(path("a").appending(name).description == "a/s\\xff\u{e9}\\xe2\\x82x")
        // Bytes in memory, as a walk decodes them (ASCII taken as it is), give the same names.
        for bytes in [raw, Array("plain".utf8), Array("caf\u{e9}".utf8), [0x61, 0x0a, 0x7f], []] {
            #expect(bytes.withUnsafeBytes { TreePath.name(raw: $0) } == TreePath.name(raw: bytes[...]), "\(bytes)")
        }
    }

    @Test func pathsAreEqualExactlyWhenTheirBytesAre() {
        // Equality compares eight bytes at a time: a difference at any position, in any length, is seen.
        for length in 1...40 {
            let text = String((0..<length).map { Character(UnicodeScalar(UInt8(97 + $0 % 26))) })
            let same = TreePath(joined: String(text.utf8.map { Character(UnicodeScalar($0)) }))
            #expect(TreePath(joined: text) == same && TreePath(joined: text).hashValue == same.hashValue)
            for position in 0..<length {
                var bytes = Array(text.utf8)
                bytes[position] = UInt8(ascii: "Z")
                #expect(TreePath(joined: text) != TreePath(joined: String(decoding: bytes, as: UTF8.self)), "\(length) \(position)")
            }
            #expect(TreePath(joined: text) != TreePath(joined: text + "a") && TreePath(joined: text + "/x").isDescendant(of: same))
        }
    }

    @Test func controlCharactersAndBackslashesAreShownEscaped() {
        #expect(path("a/x\ny\u{1b}[2J\\z\u{85}").description == "a/x\\ny\\x1b[2J\\\\z\\u{85}")
        #expect(TreePath.escaped(Array("ok".utf8)) == "ok" && TreePath.anchor.description == ".")
    }
}
