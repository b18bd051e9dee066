import BPFTreeYAML

extension DesiredTree {
    /// Each program's bound maps must exist in its object with the declared map's type, key and value
    /// size (the program was compiled against them). Needs the programs' images (`images`, by path).
    public func bindingProblems(_ images: [TreePath: ProgramImage]) -> [Diagnostic] {
        var diagnostics: [Diagnostic] = []
        for entry in entries {
            guard case .program(let spec) = entry.kind, let image = images[entry.path], let origin = entry.origin else { continue }
            for binding in spec.maps {
                let field = "\(origin.field).program.maps.\(binding.name)"
                guard let own = image.objectMaps[binding.name], !own.internal else {
                    let names = image.objectMaps.filter { !$0.value.internal }.keys.sorted().joined(separator: ", ")
                    diagnostics.append(Diagnostic("\(spec.object) has no map named '\(binding.name)'; it has: \(names.isEmpty ? "none" : names)",
                                                  at: binding.location, field: field))
                    continue
                }
                guard case .map(let declared)? = self[binding.path]?.kind else { continue }
                var differences: [String] = []
                if own.type != declared.type.kernelValue {
                    differences.append("type \(MapType(kernelValue: own.type)?.rawValue ?? "\(own.type)") in the object, \(declared.type.rawValue) declared")
                }
                if own.keySize != declared.keySize { differences.append("keySize \(own.keySize) in the object, \(declared.keySize) declared") }
                if own.valueSize != declared.valueSize { differences.append("valueSize \(own.valueSize) in the object, \(declared.valueSize) declared") }
                if !differences.isEmpty {
                    diagnostics.append(Diagnostic("map \(binding.name) of \(spec.object) does not match '\(binding.path)': \(differences.joined(separator: "; "))",
                                                  at: binding.location, field: field))
                }
            }
        }
        return diagnostics
    }

    /// Each link's program must be one the link can attach (its family says which: an iterator's is for
    /// the declared target, an XDP link's an XDP program), and what it refers to must be declared as it
    /// needs. Needs the programs' images (`images`, by path).
    public func linkProblems(_ images: [TreePath: ProgramImage]) -> [Diagnostic] {
        var diagnostics: [Diagnostic] = []
        for entry in entries {
            guard case .link(let spec) = entry.kind, let origin = entry.origin,
                  case .program? = self[spec.program]?.kind, let image = images[spec.program] else { continue }
            for problem in spec.target.family.problems(of: spec, image: image, at: entry.path, in: self) {
                diagnostics.append(Diagnostic(problem.message, at: spec.locations[problem.field] ?? origin.location,
                                              field: "\(origin.field).link.\(problem.field)"))
            }
        }
        return diagnostics
    }
}
