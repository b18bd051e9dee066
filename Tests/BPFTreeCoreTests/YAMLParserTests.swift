import BPFTreeYAML
import Testing

@Suite struct YAMLParserTests {
    @Test func keepsLocationsOfNestedNodes() throws {
        let documents = try YAMLParser.parse("a:\n  b: [1, 'two']\n", file: "m.yaml")
        let root = try #require(documents.first?.root)
        guard case .mapping(let pairs) = root.value, case .mapping(let inner) = pairs[0].value.value,
              case .sequence(let items) = inner[0].value.value else {
            Issue.record("unexpected shape")
            return
        }
        #expect(inner[0].key.location == SourceLocation(file: "m.yaml", line: 2, column: 3))
        #expect(items[1].location == SourceLocation(file: "m.yaml", line: 2, column: 10))
        guard case .scalar(let quoted) = items[1].value, case .scalar(let plain) = items[0].value else {
            Issue.record("expected scalars")
            return
        }
        #expect(quoted == .init(text: "two", isPlain: false))
        #expect(plain == .init(text: "1", isPlain: true))
    }

    @Test func readsEveryDocumentOfAStream() throws {
        let documents = try YAMLParser.parse("a: 1\n---\nb: 2\n---\n", file: "m.yaml")
        #expect(documents.count == 3)
        #expect(documents[2].root == nil || documents[2].root?.isNull == true)
    }

    @Test func reportsMalformedYAMLWithItsPosition() {
        #expect {
            _ = try YAMLParser.parse("a: [1, 2\nb: 3\n", file: "bad.yaml")
        } throws: { error in
            guard let error = error as? YAMLError else { return false }
            return error.location.file == "bad.yaml" && error.location.line == 2 && error.message.contains("malformed YAML")
        }
    }

    @Test func refusesDuplicateKeys() {
        #expect {
            _ = try YAMLParser.parse("a: 1\na: 2\n", file: "dup.yaml")
        } throws: { error in
            (error as? YAMLError)?.description == "dup.yaml:2:1: duplicate key 'a' (first at line 1)"
        }
    }

    /// Large mappings look keys up in a table rather than by scanning; both ways refuse duplicates.
    @Test func refusesDuplicateKeysInALargeMapping() {
        let keys = (0..<40).map { "k\($0): \($0)" }.joined(separator: "\n")
        #expect {
            _ = try YAMLParser.parse(keys + "\nk7: again\n", file: "big.yaml")
        } throws: { error in
            (error as? YAMLError)?.description == "big.yaml:41:1: duplicate key 'k7' (first at line 8)"
        }
        #expect(throws: Never.self) { _ = try YAMLParser.parse(keys + "\nk40: fine\n", file: "big.yaml") }
    }

    /// Scalars, nested collections and an alias of a collection keep their text and shape after the
    /// document's storage is shared by every node.
    @Test func keepsTextAndShapeOfEveryNode() throws {
        let documents = try YAMLParser.parse("a: &x [b, {c: 'd e'}]\nf: *x\ng: ''\n", file: "s.yaml")
        guard case .mapping(let pairs) = try #require(documents.first?.root).value, pairs.count == 3,
              case .sequence(let items) = pairs[1].value.value, items.count == 2,
              case .mapping(let inner) = items[1].value else {
            Issue.record("unexpected shape")
            return
        }
        #expect(pairs.map(\.key.text) == ["a", "f", "g"])
        #expect(items[0].text == "b" && items[0].isPlainScalar)
        #expect(inner[0].value.text == "d e" && !inner[0].value.isPlainScalar)
        #expect(pairs[1].value.location == SourceLocation(file: "s.yaml", line: 2, column: 4))
        #expect(pairs[2].value.text == "" && !pairs[2].value.isNull, "a quoted empty string is not null")
    }

    @Test func resolvesAliases() throws {
        let documents = try YAMLParser.parse("x: &m {k: 1}\ny: *m\n", file: "a.yaml")
        guard case .mapping(let pairs) = try #require(documents.first?.root).value,
              case .mapping(let aliased) = pairs[1].value.value else {
            Issue.record("unexpected shape")
            return
        }
        #expect(aliased.count == 1)
    }
}
