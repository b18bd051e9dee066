import BPFTreeCore
import BPFTreeYAML
import Foundation

/// Reads manifest and policy files (files, or every `*.yaml`/`*.yml` of a directory, sorted).
/// These paths are outside the bpffs, so symlinks there (e.g. a ConfigMap's `..data`) are followed.
struct ManifestLoader {
    var pageSize: Int

    /// Manifests (`kind: Tree`) merged into the desired tree.
    func loadTree(_ paths: [String]) -> Result<DesiredTree, ValidationFailure> {
        var diagnostics: [Diagnostic] = []
        var manifests: [Manifest] = []
        for documents in read(paths, diagnostics: &diagnostics) {
            switch ManifestDecoder(pageSize: pageSize).decode(documents) {
            case .success(let decoded): manifests += decoded
            case .failure(let failure): diagnostics += failure.diagnostics
            }
        }
        guard diagnostics.isEmpty else { return .failure(ValidationFailure(diagnostics)) }
        return DesiredTree.build(manifests)
    }

    /// Policies (`kind: Policy`); with no paths, the built-in default.
    func loadPolicies(_ paths: [String]) -> Result<PolicySet, ValidationFailure> {
        guard !paths.isEmpty else { return .success(.builtin) }
        var diagnostics: [Diagnostic] = []
        var policies: [Policy] = []
        for documents in read(paths, diagnostics: &diagnostics) {
            switch PolicyDecoder().decode(documents) {
            case .success(let decoded): policies += decoded
            case .failure(let failure): diagnostics += failure.diagnostics
            }
        }
        guard diagnostics.isEmpty else { return .failure(ValidationFailure(diagnostics)) }
        if policies.isEmpty {
            return .failure(ValidationFailure([Diagnostic("no Policy document found", at: SourceLocation(file: paths[0], line: 1, column: 1), field: "")]))
        }
        return PolicySet.build(policies)
    }

    /// The parsed YAML documents of each file.
    private func read(_ paths: [String], diagnostics: inout [Diagnostic]) -> [[YAMLDocument]] {
        var result: [[YAMLDocument]] = []
        for file in expand(paths, diagnostics: &diagnostics) {
            let bytes: [UInt8]
            switch FileBytes.read(file) {
            case .success(let read): bytes = read
            case .failure(let error):
                diagnostics.append(Diagnostic("cannot read: \(error)", at: SourceLocation(file: file, line: 1, column: 1), field: ""))
                continue
            }
            do {
                result.append(try YAMLParser.parse(bytes: bytes, file: file))
            } catch {
                diagnostics.append(Diagnostic(error.message, at: error.location, field: ""))
            }
        }
        return result
    }

    private func expand(_ paths: [String], diagnostics: inout [Diagnostic]) -> [String] {
        var files: [String] = []
        for path in paths {
            let here = SourceLocation(file: path, line: 1, column: 1)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                diagnostics.append(Diagnostic("no such file or directory", at: here, field: ""))
                continue
            }
            guard isDirectory.boolValue else {
                files.append(path)
                continue
            }
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            let found = names.filter { ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml")) && !$0.hasPrefix(".") }.sorted()
            if found.isEmpty {
                diagnostics.append(Diagnostic("directory holds no *.yaml or *.yml file", at: here, field: ""))
            }
            files += found.map { (path as NSString).appendingPathComponent($0) }
        }
        return files
    }
}
