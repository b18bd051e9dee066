import BPFTreeCore
import BPFTreeTestSupport
import BPFTreeYAML
import Testing

/// Input built to crash, hang or exhaust memory is refused with a location, in bounded time and memory.
@Suite struct HostileInputTests {
    func yamlError(_ text: String) -> YAMLError? {
        do {
            _ = try YAMLParser.parse(text, file: "h.yaml")
            return nil
        } catch {
            return error
        }
    }

    @Test func deepNestingIsRefusedWhereItGoesTooDeep() throws {
        let deep = String(repeating: "[", count: 1_000_000) + String(repeating: "]", count: 1_000_000)
        let error = try #require(yamlError("a: " + deep + "\n"))
        #expect(error.message == "collections nest more than \(YAMLParser.maxDepth) deep")
        #expect(error.location.line == 1 && error.location.column == 4 + YAMLParser.maxDepth - 1, "\(error.location)")
    }

    @Test func tenThousandNestedDirectoriesAreRefusedNotRecursedInto() throws {
        var text = "apiVersion: bpftree/v1\nkind: Tree\nmetadata: {name: deep}\nspec:\n  entries:\n"
        var indent = "    "
        for level in 0..<10_000 {
            text += "\(indent)d\(level):\n\(indent)  directory:\n\(indent)    entries:\n"
            indent += "      "
            if text.utf8.count > 4_000_000 { break }
        }
        text += "\(indent)leaf: {directory: {}}\n"
        let found = diagnostics(text)
        #expect(found.count == 1 && found[0].message.contains("collections nest more than"), "\(found.prefix(2))")
    }

    @Test func anAliasBombIsRefusedAtTheAliasThatTipsIt() throws {
        // Ten aliases of ten, nine levels deep: 10^9 entries once expanded.
        var text = "apiVersion: bpftree/v1\nkind: Tree\nmetadata: {name: bomb}\nspec:\n  entries:\n"
        text += "    l0: &l0 {directory: {entries: {a: {directory: {}}}}}\n"
        for level in 1...9 {
            let refs = (0..<10).map { "x\($0): *l\(level - 1)" }.joined(separator: ", ")
            text += "    l\(level): &l\(level) {directory: {entries: {\(refs)}}}\n"
        }
        let found = diagnostics(text)
        #expect(found.count == 1 && found[0].message.hasPrefix("aliases expand to more than"), "\(found)")
        #expect(found.first?.location.line ?? 0 > 6)
    }

    @Test func aliasesThatDoNotMultiplyAreFine() throws {
        let text = manifest("""
                base: &shape {map: {type: array, valueSize: 8, maxEntries: 4}}
                copy: *shape
            """)
        #expect(diagnostics(text).isEmpty, "\(diagnostics(text))")
    }

    @Test(arguments: [
        ("{type: hash, keySize: 4, valueSize: 4294967295, maxEntries: 1, contents: [{key: 1, value: 1}]}",
         "map.valueSize", "not below the kernel's limit of 4 MiB"),
        ("{type: hash, keySize: 4, valueSize: 8, maxEntries: 4294967295}", "map.maxEntries", "above the kernel's limit of 134217728"),
        ("{type: percpu_array, valueSize: 40000, maxEntries: 1}", "map.valueSize", "above the kernel's per-CPU limit of 32768"),
        ("{type: queue, valueSize: 4294967295, maxEntries: 1}", "map.valueSize", "above the kernel's limit of 4 MiB"),
        ("{type: array, valueSize: 1048576, maxEntries: 64, contents: [" + (0..<64).map { "{key: \($0), value: 1}" }.joined(separator: ", ") + "]}",
         "map.contents", "contents may take at most 64 MiB"),
    ])
    func sizesTheKernelRefusesAreRefusedWithTheirField(_ map: String, _ field: String, _ message: String) throws {
        let found = diagnostics(manifest("    big: {map: \(map)}"))
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.field == "spec.entries.big.\(field)" && found.first?.message.contains(message) == true, "\(found)")
        #expect(found.first?.location.line == 7)
    }

    @Test func aMapLargerThanTheMachineIsRefusedByTheCheck() throws {
        let tree = try desired(manifest("    big: {map: {type: array, valueSize: 4096, maxEntries: 4000000}}"))
        let found = PolicyCheck.violations(tree, .builtin, possibleCPUs: 2, machineMemory: 8 << 30)
        #expect(found.count == 1 && found[0].message.contains("is more than this machine has (8 GiB)"), "\(found)")
        #expect(PolicyCheck.violations(tree, .builtin, possibleCPUs: 2, machineMemory: 32 << 30).isEmpty)
    }
}
