import BPFTreeCore
import CBPFTreeShim
import Glibc
import Synchronization
import SystemPackage

/// Loads one program of a BPF ELF object with the system libbpf. Before planning, each declared program
/// is loaded once and closed (`image`): that proves it loads, and gives the kernel's tag to compare with
/// what is pinned. The executor loads it again to pin it (`load`), with its maps bound to the declared pins.
public enum ProgramLoader {
    /// Why a program cannot be loaded, and which field of its declaration is at fault.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// The `program:` field at fault: `object`, `name`, `type` or `maps.<name>`.
        public var field: String
        public var message: String
        /// The errno of a load the kernel refused, with the program type and expected attach type it was
        /// loaded as (to tell which delegation a token lacked).
        public var refused: (errno: Int32, type: ProgramType?, attach: AttachType?)?
        public var description: String { message }
    }

    /// What loading `spec` gives. Cached by `ProgramImage.cacheKey` in memory (a running service does not
    /// load an unchanged program again on every pass) and in `images` between runs; `environment` is what
    /// else goes into the key besides `ImageStore.environment` (the token's delegation).
    public static func image(_ spec: ProgramSpec, images: ImageStore? = nil,
                             environment: [String] = []) -> Result<ProgramImage, Failure> {
        let bytes: [UInt8]
        switch FileBytes.read(spec.objectPath) {
        case .success(let read): bytes = read
        case .failure(let error):
            return .failure(Failure(field: "object", message: "cannot read BPF object '\(spec.objectPath)': \(error)"))
        }
        let globals = spec.globals.map { "global \($0)" }
        let key = ProgramImage.cacheKey(object: bytes, program: spec.program, type: spec.type, attachType: spec.attachType,
                                        environment: ImageStore.environment + environment + globals)
        if let known = cache.withLock({ $0[key] }) { return declarable(known) }
        if let stored = images?.image(for: key) {
            remember(stored, key)
            return declarable(stored)
        }
        let result = load([spec], bytes: bytes, maps: [], keep: false).map { $0[0].image }
        if case .success(let image) = result {
            remember(image, key)
            images?.learn(image, for: key)
        }
        return result.flatMap(declarable)
    }

    /// `image`, or why a program of its type cannot be declared yet: one that loads but would be pinned
    /// without what makes it work (a struct_ops program without its struct_ops map, an extension without
    /// the program it replaces).
    private static func declarable(_ image: ProgramImage) -> Result<ProgramImage, Failure> {
        switch image.type {
        case 27:
            .failure(Failure(field: "name", message: "a struct_ops program is loaded with the struct_ops map that uses it, which bpftree cannot declare yet; it is never pinned on its own"))
        case 28:
            .failure(Failure(field: "name", message: "an freplace (extension) program is loaded against a target program, which bpftree cannot declare yet; it is never pinned on its own"))
        default:
            .success(image)
        }
    }

    private static func remember(_ image: ProgramImage, _ key: [UInt8]) {
        cache.withLock { images in
            // Objects rebuilt again and again must not grow a long-running service without bound.
            if images.count >= 256 { images.removeAll() }
            images[key] = image
        }
    }

    /// The global variables of the object in `bytes`, as its BTF describes them.
    public static func globals(of bytes: [UInt8], objectPath: String) -> Result<[GlobalVariable], Failure> {
        var count: UInt32 = 0
        var found = [bt_global_var](repeating: bt_global_var(), count: 64)
        var status = bytes.withUnsafeBytes { object in
            bt_object_globals(object.baseAddress, object.count, objectName(objectPath), &found, UInt32(found.count), &count)
        }
        if status == 0, Int(count) > found.count {
            // More variables than room: ask again with room for all, so none is missed.
            found = [bt_global_var](repeating: bt_global_var(), count: Int(count))
            status = bytes.withUnsafeBytes { object in
                bt_object_globals(object.baseAddress, object.count, objectName(objectPath), &found, UInt32(found.count), &count)
            }
        }
        guard status == 0 else {
            return .failure(Failure(field: "object", message: "cannot open BPF object \(objectPath): \(Errno(rawValue: -status))"))
        }
        return .success(found.prefix(Int(min(count, UInt32(found.count)))).map { variable in
            let element: GlobalVariable.Element = switch variable.kind {
            case 1: .integer(signed: variable.is_signed != 0)
            case 2: .bool
            case 3: .enumeration(signed: variable.is_signed != 0)
            default: .other
            }
            return GlobalVariable(name: cString(variable.name), section: cString(variable.section), size: Int(variable.size),
                                  element: element, elementSize: Int(variable.elem_size),
                                  count: variable.is_array != 0 ? Int(variable.count) : nil, typeName: cString(variable.type_name))
        })
    }

    /// Loads `specs` (programs of one object, with the same maps and globals: `ProgramSpec.loadKey`) from
    /// `bytes` in one load, so they share the object's own maps; the object's maps named in `maps` use
    /// those fds. `keep`: return the programs' fds too. The images are in the order of `specs`.
    public static func load(_ specs: [ProgramSpec], bytes: [UInt8], maps: [(name: String, map: Descriptor)],
                            keep: Bool) -> Result<[(image: ProgramImage, descriptor: Descriptor?)], Failure> {
        guard let first = specs.first else { return .success([]) }
        var encoded: [(name: String, bytes: [UInt8])] = []
        if !first.globals.isEmpty {
            switch globals(of: bytes, objectPath: first.objectPath) {
            case .failure(let failure): return .failure(failure)
            case .success(let variables):
                switch first.encodeGlobals(variables) {
                case .success(let values): encoded = values
                case .failure(let error): return .failure(Failure(field: "globals.\(error.name)", message: error.message))
                }
            }
        }
        var result = bt_prog_load_result()
        let strings = (specs.map(\.program) + maps.map(\.name) + encoded.map(\.name)).map { strdup($0) }
        defer { strings.forEach { free($0) } }
        var programs = specs.enumerated().map { index, spec in
            var program = bt_load_program()
            program.name = UnsafePointer(strings[index])
            program.type = spec.type.map { Int32($0.kernelValue) } ?? -1
            program.attach_type = spec.attachType.map { Int32($0.kernelValue) } ?? -1
            program.fd = -1
            return program
        }
        let mapNames = strings[specs.count..<specs.count + maps.count].map { UnsafePointer($0) }
        let globalNames = strings[(specs.count + maps.count)...].map { UnsafePointer($0) }
        let fds = maps.map(\.map.rawValue)
        let status = bytes.withUnsafeBytes { object in
            mapNames.withUnsafeBufferPointer { namePointers in
                fds.withUnsafeBufferPointer { fdPointer in
                    withGlobals(encoded.map(\.bytes), names: globalNames) { globals in
                        bt_prog_load(object.baseAddress, object.count, objectName(first.objectPath), &programs, UInt32(programs.count),
                                     namePointers.baseAddress, fdPointer.baseAddress, UInt32(maps.count),
                                     globals.baseAddress, UInt32(globals.count), keep ? 1 : 0, &result)
                    }
                }
            }
        }
        let log = cString(result.log)
        guard status == 0 else {
            let failed = specs.indices.contains(Int(result.failed)) ? specs[Int(result.failed)] : first
            return .failure(failure(failed, status: status, log: log, result: result))
        }
        var objectMaps: [String: ObjectMap] = [:]
        withUnsafeBytes(of: result.object_maps) { raw in
            let all = raw.bindMemory(to: bt_object_map.self)
            for map in all.prefix(Int(result.nr_object_maps)) {
                objectMaps[cString(map.name)] = ObjectMap(type: map.type, keySize: map.key_size, valueSize: map.value_size, used: map.used != 0,
                                                          internal: map.internal != 0)
            }
        }
        return .success(programs.enumerated().map { index, program in
            let image = ProgramImage(tag: program.tag, type: program.loaded_type, expectedAttachType: program.expected_attach_type,
                                     name: cString(program.kernel_name), objectMaps: index == 0 ? objectMaps : [:],
                                     section: cString(program.section))
            return (image, program.fd >= 0 ? Descriptor(owning: program.fd) : nil)
        })
    }

    /// Runs `body` with a `bt_load_global` for each value, pointing at memory that lives as long as `body` runs.
    private static func withGlobals<R>(_ values: [[UInt8]], names: [UnsafePointer<CChar>?],
                                       _ body: (UnsafeBufferPointer<bt_load_global>) -> R) -> R {
        let total = values.reduce(0) { $0 + $1.count }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(total, 1)) { storage in
            var offset = 0
            var globals: [bt_load_global] = []
            for (value, name) in zip(values, names) {
                let start = storage.baseAddress.map { $0 + offset }
                _ = UnsafeMutableBufferPointer(rebasing: storage[offset..<offset + value.count]).initialize(from: value)
                globals.append(bt_load_global(name: name, value: UnsafeRawPointer(start), size: UInt32(value.count)))
                offset += value.count
            }
            return globals.withUnsafeBufferPointer(body)
        }
    }

    private static func failure(_ spec: ProgramSpec, status: Int32, log: String, result: bt_prog_load_result) -> Failure {
        let object = spec.object
        switch status {
        case -ENOENT:
            let available = cString(result.programs)
            return Failure(field: "name", message: "no program named '\(spec.program)' in \(object); it has: \(available.isEmpty ? "no programs" : available)")
        case -EMEDIUMTYPE:
            let section = ProgramType(kernelValue: result.type)?.name ?? "type \(result.type)"
            return Failure(field: "type", message: "program '\(spec.program)' in \(object) is a \(section) program (by its section name), declared \(spec.type?.name ?? "?")")
        case -ENXIO:
            return Failure(field: "maps.\(log)", message: "\(object) has no map named '\(log)'")
        case -ENOKEY, -EMSGSIZE:
            // Validated against the object's BTF already: only an object rewritten since gets here.
            return Failure(field: "globals.\(log)", message: "\(object) has no global variable '\(log)' of the size validated; run again")
        default:
            // ENOTSUPP is the kernel's own (524), which strerror does not know.
            var reason = status == -524 ? "ENOTSUPP (524: not supported by this kernel here)" : Errno(rawValue: -status).description
            switch result.type {
            case 27: reason += "; a struct_ops program is loaded with the struct_ops map that uses it, which bpftree cannot declare yet"
            case 28: reason += "; an freplace (extension) program is loaded against a target program, which bpftree cannot declare yet"
            default: break
            }
            let lines = log.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
            // libbpf's messages, ending with the verifier's last lines: where it stopped and why.
            let tail = lines.suffix(12).joined(separator: "\n    ")
            let opened = result.loading == 1
            let what = opened ? "cannot load program '\(spec.program)' from \(object)" : "cannot open BPF object \(object)"
            var failure = Failure(field: opened ? "name" : "object", message: "\(what): \(reason)" + (tail.isEmpty ? "" : "\n    \(tail)"))
            if opened, let hint = Self.capabilityHint(status, type: ProgramType(kernelValue: result.type)) {
                failure.message = "\(what): \(reason); \(hint)" + (tail.isEmpty ? "" : "\n    \(tail)")
            }
            if opened, let type = ProgramType(kernelValue: result.type), let since = type.kernelSince,
               let missing = KernelFeatures.missing(type.constant, what: "\(type.name) programs", since: since) {
                return Failure(field: "name", message: "\(what): \(missing)")
            }
            if opened {
                failure.refused = (-status, ProgramType(kernelValue: result.type), AttachType(kernelValue: result.expected_attach_type))
                if status == -EPERM, Machine.hasBPFPrivileges {
                    // libbpf's own hint (ulimit -l) does not apply: the privileges are there.
                    let refusal = Self.usesTrampoline(type: result.type, attach: result.expected_attach_type)
                        ? "this kernel refuses programs that attach through a BPF trampoline (fentry, fexit, fmod_ret, lsm, freplace)"
                        : "this kernel refuses this program"
                    failure.message = "\(what): \(reason): \(refusal) although bpftree has CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN: "
                        + "a limit of the kernel, not of memory (libbpf's ulimit -l guess below does not apply)"
                        + (tail.isEmpty ? "" : "\n    \(tail)")
                }
            }
            return failure
        }
    }

    /// The capabilities loading a program of `type` may take that this process lacks: CAP_BPF always,
    /// CAP_NET_ADMIN or CAP_PERFMON by type, and CAP_PERFMON for any program whose code the verifier accepts
    /// only from a trusted loader (pointer arithmetic on packets and maps, among others).
    private static func capabilityHint(_ status: Int32, type: ProgramType?) -> String? {
        var needed: [Capability] = [.bpf, .perfmon]
        if type?.needsNetAdmin == true { needed.append(.netAdmin) }
        return KernelError.capabilityHint(status, needs: needed, for: "loading a program\(type.map { " of type \($0.name)" } ?? "")",
                                          alsoFor: [-EINVAL])
    }

    /// Tracing programs other than BTF tracepoints and iterators, LSM and extension programs: the kernel
    /// attaches them through a trampoline.
    private static func usesTrampoline(type: UInt32, attach: UInt32) -> Bool {
        switch type {
        case ProgramType.tracing.kernelValue: [24, 25, 26].contains(attach)
        case ProgramType.lsm.kernelValue, 28: true
        default: false
        }
    }

    /// libbpf's name for the object: the file name without `.o`/`.bpf.o`, as its maps' prefixes show.
    private static func objectName(_ path: String) -> String {
        var name = path.split(separator: "/").last.map(String.init) ?? path
        for suffix in [".bpf.o", ".o"] where name.hasSuffix(suffix) {
            name.removeLast(suffix.count)
            break
        }
        return name
    }

    private static let cache = Mutex<[[UInt8]: ProgramImage]>([:])
}
