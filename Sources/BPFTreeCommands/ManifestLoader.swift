import BPFTreeCore
import BPFTreeYAML
import Foundation

/// Reads manifest files (files, or every `*.yaml`/`*.yml` of a directory, sorted) into a desired tree.
/// These paths are outside the bpffs, so symlinks there (e.g. a ConfigMap's `..data`) are followed.
struct ManifestLoader {
    var pageSize: Int

    func load(_ paths: [String]) -> Result<DesiredTree, ValidationFailure> {
        var diagnostics: [Diagnostic] = []
        var manifests: [Manifest] = []
        for file in expand(paths, diagnostics: &diagnostics) {
            let text: String
            do {
                text = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                diagnostics.append(Diagnostic("cannot read manifest: \(error.localizedDescription)",
                                              at: SourceLocation(file: file, line: 1, column: 1), field: ""))
                continue
            }
            do {
                let documents = try YAMLParser.parse(text, file: file)
                switch ManifestDecoder(pageSize: pageSize).decode(documents) {
                case .success(let decoded): manifests += decoded
                case .failure(let failure): diagnostics += failure.diagnostics
                }
            } catch {
                diagnostics.append(Diagnostic(error.message, at: error.location, field: ""))
            }
        }
        guard diagnostics.isEmpty else { return .failure(ValidationFailure(diagnostics)) }
        return DesiredTree.build(manifests)
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
            let manifests = names.filter { ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml")) && !$0.hasPrefix(".") }.sorted()
            if manifests.isEmpty {
                diagnostics.append(Diagnostic("directory holds no *.yaml or *.yml manifest", at: here, field: ""))
            }
            files += manifests.map { (path as NSString).appendingPathComponent($0) }
        }
        return files
    }
}
