import Foundation
import BPFTreeCore
import BPFTreeYAML
import BPFTreeTestSupport
import Testing

@Suite struct ManifestDecoderTests {
    @Test func decodesTheIssueSketch() throws {
        let text = """
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: job-a}
            spec:
              root: jobs/A
              mode: "0755"
              entries:
                config:
                  map: {type: array, keySize: 4, valueSize: 8, maxEntries: 16, freeze: true,
                        contents: [{key: 0, value: 100}, {key: 1, value: "0a 0b"}]}
                  mode: "0640"
                stats:
                  directory: {mode: "0750"}
            """
        let manifests = try decode(text).get()
        #expect(manifests.count == 1)
        let entries = manifests[0].entries
        #expect(entries.map(\.path.description) == ["jobs/A", "jobs/A/config", "jobs/A/stats"])
        #expect(entries[0].mode == 0o755)
        #expect(entries[2].mode == 0o750)
        #expect(entries[2].kind == .directory)
        guard case .map(let spec) = entries[1].kind else {
            Issue.record("config is not a map")
            return
        }
        #expect(entries[1].mode == 0o640)
        #expect(spec.type == .array && spec.keySize == 4 && spec.valueSize == 8 && spec.maxEntries == 16)
        #expect(spec.freeze)
        #expect(spec.name == "config")
        #expect(spec.contents == [
            MapEntry(key: [0, 0, 0, 0], value: [100, 0, 0, 0, 0, 0, 0, 0]),
            MapEntry(key: [1, 0, 0, 0], value: [0x0a, 0x0b, 0, 0, 0, 0, 0, 0]),
        ])
        #expect(entries[1].origin?.location == SourceLocation(file: "m.yaml", line: 8, column: 5))
    }

    /// Without `name:`, a map is named after its entry: what the kernel refuses becomes '_', at most 15.
    @Test func namesAMapAfterItsEntry() throws {
        let text = manifest("""
                a-b-c-d-e-f-g-h-i: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 1}}
                short9: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 1}}
                ünï: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 1}}
            """)
        let names = try decode(text).get()[0].entries.compactMap { entry -> String? in
            if case .map(let spec) = entry.kind { return spec.name }
            return nil
        }
        #expect(names == ["a_b_c_d_e_f_g_h", "short9", "_n_"])
    }

    @Test func appliesTypeDefaultsAndFlags() throws {
        let text = manifest("""
                lpm:
                  map: {type: lpm_trie, keySize: 8, valueSize: 4, maxEntries: 64, flags: [no_prealloc], numaNode: 0}
                events:
                  map: {type: ringbuf, maxEntries: 8192}
                q:
                  map: {type: queue, valueSize: 4, maxEntries: 4, contents: [{value: -1}, {value: 7}]}
                counts:
                  map: {type: percpu_array, valueSize: 8, maxEntries: 2, name: per.cpu}
            """)
        let entries = try decode(text).get()[0].entries
        let specs = entries.compactMap { if case .map(let spec) = $0.kind { spec } else { nil } }
        #expect(specs.map(\.type) == [.lpmTrie, .ringbuf, .queue, .percpuArray])
        #expect(specs[0].flags == MapFlag.noPrealloc.bit | MapFlag.numaNode.bit)
        #expect(specs[1].keySize == 0 && specs[1].valueSize == 0)
        #expect(specs[2].contents.map(\.value) == [[0xff, 0xff, 0xff, 0xff], [7, 0, 0, 0]])
        #expect(specs[2].contents.allSatisfy { $0.key.isEmpty })
        #expect(specs[3].keySize == 4 && specs[3].name == "per.cpu")
    }

    @Test func readsEveryDocumentOfAFile() throws {
        let text = manifest("    a: {directory: {}}", name: "one") + "\n---\n" + manifest("    b: {directory: {}}", name: "two", root: "jobs/B")
        #expect(try decode(text).get().map(\.name) == ["one", "two"])
    }

    /// One bad input, the field the error must name, and words it must contain.
    struct BadInput: CustomTestStringConvertible, Sendable {
        var name: String
        var entries: String
        var root = "jobs/A"
        var field: String
        var words: String
        var testDescription: String { name }
    }

    static let badInputs: [BadInput] = [
        BadInput(name: "unknown field", entries: "    a: {map: {type: hash, keySize: 4, valueSize: 4, maxEntrys: 1}}",
                 field: "spec.entries.a.map.maxEntrys", words: "did you mean 'maxEntries'"),
        BadInput(name: "wrong type", entries: "    a: {map: {type: hash, keySize: four, valueSize: 4, maxEntries: 1}}",
                 field: "spec.entries.a.map.keySize", words: "expected an integer, found 'four'"),
        BadInput(name: "missing required", entries: "    a: {map: {type: hash, keySize: 4, maxEntries: 1}}",
                 field: "spec.entries.a.map.valueSize", words: "missing required field 'valueSize'"),
        BadInput(name: "absolute root", entries: "    a: {directory: {}}", root: "/jobs/A",
                 field: "spec.root", words: "absolute path"),
        BadInput(name: "dot-dot root", entries: "    a: {directory: {}}", root: "jobs/../x",
                 field: "spec.root", words: "'..' is not allowed"),
        BadInput(name: "empty segment", entries: "    a: {directory: {}}", root: "jobs//A",
                 field: "spec.root", words: "empty path segment"),
        BadInput(name: "dot in name", entries: "    a.b: {directory: {}}",
                 field: "spec.entries.a.b", words: "bpffs refuses"),
        BadInput(name: "name over 255 bytes", entries: "    \(String(repeating: "n", count: 256)): {directory: {}}",
                 field: "spec.entries.\(String(repeating: "n", count: 256))", words: "limit is 255"),
        BadInput(name: "invalid object name", entries: "    a: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 1, name: bad-name}}",
                 field: "spec.entries.a.map.name", words: "invalid kernel object name"),
        BadInput(name: "object name too long", entries: "    a: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 1, name: abcdefghijklmnop}}",
                 field: "spec.entries.a.map.name", words: "at most 15"),
        BadInput(name: "unknown map type", entries: "    a: {map: {type: hashh, keySize: 4, valueSize: 4, maxEntries: 1}}",
                 field: "spec.entries.a.map.type", words: "did you mean 'hash'"),
        BadInput(name: "unknown flag", entries: "    a: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 1, flags: [no_prealoc]}}",
                 field: "spec.entries.a.map.flags[0]", words: "unknown map flag 'no_prealoc'"),
        BadInput(name: "zero key size", entries: "    a: {map: {type: hash, keySize: 0, valueSize: 4, maxEntries: 1}}",
                 field: "spec.entries.a.map.keySize", words: "keySize above 0"),
        BadInput(name: "zero value size", entries: "    a: {map: {type: hash, keySize: 4, valueSize: 0, maxEntries: 1}}",
                 field: "spec.entries.a.map.valueSize", words: "valueSize above 0"),
        BadInput(name: "zero max entries", entries: "    a: {map: {type: array, valueSize: 4, maxEntries: 0}}",
                 field: "spec.entries.a.map.maxEntries", words: "above 0"),
        BadInput(name: "array key size", entries: "    a: {map: {type: array, keySize: 8, valueSize: 4, maxEntries: 1}}",
                 field: "spec.entries.a.map.keySize", words: "needs keySize 4"),
        BadInput(name: "ringbuf not power of two", entries: "    a: {map: {type: ringbuf, maxEntries: 12288}}",
                 field: "spec.entries.a.map.maxEntries", words: "power of two"),
        BadInput(name: "ringbuf not page aligned", entries: "    a: {map: {type: ringbuf, maxEntries: 1024}}",
                 field: "spec.entries.a.map.maxEntries", words: "multiple of the page size"),
        BadInput(name: "key wider than key size", entries: "    a: {map: {type: hash, keySize: 1, valueSize: 4, maxEntries: 2, contents: [{key: 256, value: 1}]}}",
                 field: "spec.entries.a.map.contents[0].key", words: "does not fit in 1 bytes"),
        BadInput(name: "hex value wider than value size", entries: "    a: {map: {type: hash, keySize: 4, valueSize: 2, maxEntries: 2, contents: [{key: 1, value: \"01 02 03\"}]}}",
                 field: "spec.entries.a.map.contents[0].value", words: "3 bytes do not fit in 2"),
        BadInput(name: "more entries than max", entries: "    a: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 1, contents: [{key: 1, value: 1}, {key: 2, value: 2}]}}",
                 field: "spec.entries.a.map.contents", words: "do not fit in maxEntries 1"),
        BadInput(name: "array index beyond max", entries: "    a: {map: {type: array, valueSize: 4, maxEntries: 2, contents: [{key: 2, value: 1}]}}",
                 field: "spec.entries.a.map.contents[0].key", words: "not below maxEntries"),
        BadInput(name: "mode above 07777", entries: "    a: {directory: {mode: \"17777\"}}",
                 field: "spec.entries.a.directory.mode", words: "above 07777"),
        BadInput(name: "mode not octal", entries: "    a: {directory: {mode: \"0789\"}}",
                 field: "spec.entries.a.directory.mode", words: "not an octal mode"),
        BadInput(name: "both map and directory", entries: "    a: {directory: {}, map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 1}}",
                 field: "spec.entries.a", words: "not 'map' and 'directory'"),
        BadInput(name: "mode given twice", entries: "    a: {mode: \"0700\", directory: {mode: \"0750\"}}",
                 field: "spec.entries.a.directory.mode", words: "given twice"),
        BadInput(name: "contents for a ringbuf", entries: "    a: {map: {type: ringbuf, maxEntries: 4096, contents: []}}",
                 field: "spec.entries.a.map.contents", words: "cannot be given contents"),
        BadInput(name: "unsupported map type", entries: "    a: {map: {type: hash_of_maps, keySize: 4, valueSize: 4, maxEntries: 1}}",
                 field: "spec.entries.a.map.type", words: "not supported"),
        BadInput(name: "rdonly with contents", entries: "    a: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 1, flags: [rdonly], contents: [{key: 1, value: 1}]}}",
                 field: "spec.entries.a.map.flags", words: "use freeze"),
        BadInput(name: "reserved ledger name", entries: "    bpftree_ledger: {directory: {}}",
                 field: "spec.entries.bpftree_ledger", words: "reserved for bpftree's own use"),
        BadInput(name: "reserved temporary prefix", entries: "    bpftree_tmp_1: {directory: {}}",
                 field: "spec.entries.bpftree_tmp_1", words: "reserved for bpftree's own use"),
        BadInput(name: "onIncompatible on a directory", entries: "    a: {directory: {}, onIncompatible: replace}",
                 field: "spec.entries.a.onIncompatible", words: "applies to maps, programs and links"),
        BadInput(name: "unknown onIncompatible", entries: "    a: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 1}, onIncompatible: swap}",
                 field: "spec.entries.a.onIncompatible", words: "not one of fail, replace, migrate"),
        BadInput(name: "adopt not a boolean", entries: "    a: {directory: {}, adopt: maybe}",
                 field: "spec.entries.a.adopt", words: "expected true or false"),
    ]

    @Test(arguments: badInputs)
    func refusesBadInput(_ input: BadInput) throws {
        let found = diagnostics(manifest(input.entries, root: input.root), file: "bad.yaml")
        let match = found.first { $0.field == input.field && $0.message.contains(input.words) }
        #expect(match != nil, "expected \(input.field): …\(input.words)…; got \(found.map(\.description))")
        #expect(match?.location.file == "bad.yaml")
        #expect((match?.location.line ?? 0) >= 1)
    }

    @Test func reportsEveryProblemOfARunTogether() {
        let text = """
            apiVersion: bpftree/v2
            kind: Trees
            metadata: {}
            spec:
              root: /abs
              entries:
                a: {map: {type: nope, keySize: 4, valueSize: 4, maxEntries: 1}}
                b: {directory: {mode: "99"}}
            """
        let found = diagnostics(text)
        #expect(Set(found.map(\.field)).isSuperset(of: [
            "apiVersion", "kind", "metadata.name", "spec.root", "spec.entries.a.map.type", "spec.entries.b.directory.mode",
        ]))
        #expect(found.first { $0.field == "spec.entries.a.map.type" }?.location == SourceLocation(file: "m.yaml", line: 7, column: 21))
    }

    @Test func aKindInTheWrongCaseSaysKindsAreCaseSensitive() {
        let found = diagnostics(manifest("    a: {directory: {}}").replacingOccurrences(of: "kind: Tree", with: "kind: tree"))
        #expect(found.map(\.description) == ["m.yaml:2:7: kind: unknown kind 'tree'; expected 'Tree' (kinds are case-sensitive)"])
    }

    @Test func malformedYAMLIsADiagnosticWithPosition() {
        let found = diagnostics("apiVersion: [\n", file: "broken.yaml")
        #expect(found.count == 1)
        #expect(found.first?.location.file == "broken.yaml")
        #expect(found.first?.message.contains("malformed YAML") == true)
    }
}

