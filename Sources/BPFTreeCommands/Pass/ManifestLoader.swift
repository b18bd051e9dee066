import BPFTreeCore
import BPFTreeKernel
import BPFTreeYAML
import FoundationEssentials

/// Reads manifest and policy files (files, or every `*.yaml`/`*.yml` of a directory, sorted).
/// These paths are outside the bpffs, so symlinks there (e.g. a ConfigMap's `..data`) are followed.
struct ManifestLoader {
    var pageSize: Int

    /// The bytes of every manifest and policy file, read once: hashed for the stamp, parsed when needed.
    struct Inputs {
        var manifests: [SourceFile] = []
        var policies: [SourceFile] = []
        /// Files that could not be found or read.
        var diagnostics: [Diagnostic] = []
        var all: [SourceFile] { manifests + policies }
    }

    /// What the files declare, decoded and checked as far as it can be without the cgroups: templates
    /// are rendered, merged and checked against the policies per pass.
    struct Decoded {
        var manifests: [Manifest]
        var policies: PolicySet
        /// Which ledger records the run may prune, replace and settle.
        var scope: OwnerScope
        /// The sources of the templates among `manifests`.
        var cgroupSources: [CgroupSource] { manifests.compactMap { $0.forEachCgroup?.source } }
    }

    func read(manifests: [String], policies: [String]) -> Inputs {
        var inputs = Inputs()
        inputs.manifests = read(manifests, role: "manifest", diagnostics: &inputs.diagnostics)
        inputs.policies = read(policies, role: "policy", diagnostics: &inputs.diagnostics)
        return inputs
    }

    /// Decodes every file; reports every problem together.
    /// `owner`: `--owner`, if given.
    func decode(_ inputs: Inputs, policyPaths: [String], owner: String?) -> Result<Decoded, ValidationFailure> {
        var diagnostics = inputs.diagnostics
        let manifests = loadManifests(inputs.manifests)
        let policies = loadPolicies(inputs.policies, paths: policyPaths)
        let scope = manifests.flatMap { OwnerScope.of($0, flag: owner) }
        if case .failure(let failure) = manifests { diagnostics += failure.diagnostics }
        if case .failure(let failure) = policies { diagnostics += failure.diagnostics }
        if case .failure(let failure) = scope, case .success = manifests { diagnostics += failure.diagnostics }
        guard diagnostics.isEmpty, case .success(let manifests) = manifests, case .success(let policies) = policies,
              case .success(let scope) = scope
        else { return .failure(ValidationFailure(diagnostics)) }
        return .success(Decoded(manifests: manifests, policies: policies, scope: scope))
    }

    /// Manifests (`kind: Tree`), templates not yet rendered.
    func loadManifests(_ files: [SourceFile]) -> Result<[Manifest], ValidationFailure> {
        var diagnostics: [Diagnostic] = []
        var manifests: [Manifest] = []
        for documents in parse(files, diagnostics: &diagnostics) {
            switch ManifestDecoder(pageSize: pageSize).decode(documents) {
            case .success(let decoded): manifests += decoded
            case .failure(let failure): diagnostics += failure.diagnostics
            }
        }
        return diagnostics.isEmpty ? .success(manifests) : .failure(ValidationFailure(diagnostics))
    }

    /// Policies (`kind: Policy`) of `files`, read from `paths`; with no paths, the built-in default.
    func loadPolicies(_ files: [SourceFile], paths: [String]) -> Result<PolicySet, ValidationFailure> {
        guard !paths.isEmpty else { return .success(.builtin) }
        var diagnostics: [Diagnostic] = []
        var policies: [Policy] = []
        for documents in parse(files, diagnostics: &diagnostics) {
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
    private func parse(_ files: [SourceFile], diagnostics: inout [Diagnostic]) -> [[YAMLDocument]] {
        var result: [[YAMLDocument]] = []
        for file in files {
            do {
                result.append(try YAMLParser.parse(bytes: file.bytes, file: file.file))
            } catch {
                diagnostics.append(Diagnostic(error.message, at: error.location, field: ""))
            }
        }
        return result
    }

    private func read(_ paths: [String], role: String, diagnostics: inout [Diagnostic]) -> [SourceFile] {
        var files: [SourceFile] = []
        for file in expand(paths, diagnostics: &diagnostics) {
            switch FileBytes.read(file) {
            case .success(let bytes): files.append(SourceFile(role: role, file: file, bytes: bytes))
            case .failure(let error):
                diagnostics.append(Diagnostic("cannot read: \(error)", at: SourceLocation(file: file, line: 1, column: 1), field: ""))
            }
        }
        return files
    }

    private func expand(_ paths: [String], diagnostics: inout [Diagnostic]) -> [String] {
        var files: [String] = []
        for path in paths {
            let here = SourceLocation(file: path, line: 1, column: 1)
            var isDirectory = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                diagnostics.append(Diagnostic("no such file or directory", at: here, field: ""))
                continue
            }
            guard isDirectory else {
                files.append(path)
                continue
            }
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            let found = names.filter { ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml")) && !$0.hasPrefix(".") }.sorted()
            if found.isEmpty {
                diagnostics.append(Diagnostic("directory holds no *.yaml or *.yml file", at: here, field: ""))
            }
            files += found.map { path.hasSuffix("/") ? path + $0 : path + "/" + $0 }
        }
        return files
    }
}
