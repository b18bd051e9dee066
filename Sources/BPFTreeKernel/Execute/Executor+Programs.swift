import BPFTreeCore
import CBPFTreeShim
import Glibc

/// Programs and links: programs are loaded with libbpf and pinned one by one; links are created in
/// batches by the syscall program (`BT_OP_LINK_CREATE`) and pinned; all where they are staged.
extension Executor {
    /// Loads each program of `indices` (its maps bound to the declared pins, as staged) and pins it where
    /// it is staged.
    func makePrograms(_ plan: Plan, _ indices: [Int], into staging: inout Staging) throws(Failure) {
        for index in indices {
            let action = plan.actions[index]
            let spec: ProgramSpec, mode: UInt32, owner: Owner
            switch action.change {
            case .createProgram(let s, let m, let o), .replaceProgram(let s, let m, let o, _): (spec, mode, owner) = (s, m, o)
            default: continue
            }
            do throws(KernelError) {
                let (descriptor, tag) = try load(spec, for: action.path, staging: staging)
                try pinStaged(descriptor, index, action.path, kind: .program, fingerprint: tag, mode: mode, owner: owner,
                              into: &staging)
            } catch {
                throw Failure(action: index, error: error)
            }
        }
    }

    /// The program loaded from its object, with its bound maps taken from their pins; refused when the
    /// object no longer gives the program that was planned.
    private func load(_ spec: ProgramSpec, for path: TreePath, staging: Staging) throws(KernelError) -> (Descriptor, UInt64) {
        let bytes: [UInt8]
        switch FileBytes.read(spec.objectPath) {
        case .success(let read): bytes = read
        case .failure(let error):
            throw KernelError("read BPF object", path: spec.objectPath, negativeErrno: -error.errno)
        }
        var held: [Descriptor] = []
        var maps: [(name: String, fd: Int32)] = []
        for binding in spec.maps {
            let location = staging.location(of: binding.path)
            let parent = try directories.descriptor(for: location.parent)
            let fd = bt_obj_get_at(parent, location.name)
            guard fd >= 0 else { throw KernelError("BPF_OBJ_GET", path: location.description, negativeErrno: fd) }
            held.append(Descriptor(owning: fd))
            maps.append((binding.name, fd))
        }
        defer { withExtendedLifetime(held) {} }
        switch ProgramLoader.load(spec, bytes: bytes, maps: maps, keep: true) {
        case .failure(let failure):
            throw KernelError("load program", path: path.description, detail: failure.message)
        case .success(let (image, descriptor)):
            guard let descriptor else { throw KernelError("load program", path: path.description, detail: "libbpf gave no fd") }
            if let planned = spec.image, planned.tag != image.tag {
                throw KernelError("load program", path: path.description,
                                  detail: "\(spec.object) changed since it was planned (tag \(image.tagHex), planned \(planned.tagHex)); run apply again")
            }
            return (descriptor, image.tag)
        }
    }

    /// One link of a batch: what to pin once the program has run.
    private struct BatchedLink {
        var index: Int
        var spec: LinkSpec
        var mode: UInt32
        var owner: Owner
        var op: Int
    }

    /// Creates the links of `indices` in batches of the syscall program and pins them where they are
    /// staged. Returns how many times it ran.
    func makeLinks(_ plan: Plan, _ indices: [Int], into staging: inout Staging) throws(Failure) -> Int {
        guard let first = indices.first else { return 0 }
        let program = try batchProgram(for: first)
        // Each link holds a program fd and perhaps a cgroup fd until the run.
        let perRun = max(1, min(BatchProgram.maxOps, maxMapsPerBatch / 2))
        var runs = 0
        var batch: [BatchedLink] = []
        var held: [Descriptor] = []

        func flush() throws(Failure) {
            defer { batch.removeAll(); held.removeAll() }
            guard let head = batch.first else { return }
            do throws(KernelError) {
                try program.run(count: batch.count)
                runs += 1
            } catch {
                throw Failure(action: head.index, error: error)
            }
            held.removeAll()
            // Own every new fd at once so that all are closed, whatever happens below.
            let links = batch.map { link in
                let fd = program.result(link.op)
                return fd >= 0 ? Descriptor(owning: fd) : nil
            }
            for (link, descriptor) in zip(batch, links) {
                let path = plan.actions[link.index].path
                do throws(KernelError) {
                    guard let descriptor else {
                        throw KernelError("BPF_LINK_CREATE (batch program)", path: path.description,
                                          negativeErrno: program.result(link.op))
                    }
                    try pinStaged(descriptor, link.index, path, kind: .link, fingerprint: link.spec.fingerprint,
                                  mode: link.mode, owner: link.owner, into: &staging)
                } catch {
                    throw Failure(action: link.index, error: error)
                }
            }
        }

        for index in indices {
            let action = plan.actions[index]
            let spec: LinkSpec, mode: UInt32, owner: Owner
            switch action.change {
            case .createLink(let s, let m, let o), .replaceLink(let s, let m, let o, _): (spec, mode, owner) = (s, m, o)
            default: continue
            }
            if batch.count >= perRun { try flush() }
            do throws(KernelError) {
                try put(spec, op: batch.count, into: program, holding: &held, for: action.path, staging: staging)
                batch.append(BatchedLink(index: index, spec: spec, mode: mode, owner: owner, op: batch.count))
            } catch {
                throw Failure(action: index, error: error)
            }
        }
        try flush()
        return runs
    }

    /// Writes the LINK_CREATE op of `spec`: the program from its pin, and the cgroup (checked to be the
    /// one planned).
    private func put(_ spec: LinkSpec, op: Int, into program: BatchProgram, holding held: inout [Descriptor],
                     for path: TreePath, staging: Staging) throws(KernelError) {
        let location = staging.location(of: spec.program)
        let parent = try directories.descriptor(for: location.parent)
        let programFD = bt_obj_get_at(parent, location.name)
        guard programFD >= 0 else { throw KernelError("BPF_OBJ_GET", path: location.description, negativeErrno: programFD) }
        held.append(Descriptor(owning: programFD))
        guard let cgroupID = spec.cgroupID else {
            throw KernelError("create link", path: path.description, detail: "the cgroup was not resolved")
        }
        switch spec.target {
        case .cgroup(let attach):
            let directory = try CgroupScanner.directory(of: CgroupSource(path: spec.cgroup, depth: 1))
            let (fd, id) = try PinResolver.openCgroup(directory)
            held.append(Descriptor(owning: fd))
            guard id == cgroupID else {
                throw KernelError("create link", path: path.description,
                                  detail: "cgroup \(spec.cgroup) is id \(id) now, planned \(cgroupID); run apply again")
            }
            program.putLink(op, programFD: programFD, targetFD: fd, attachType: attach.kernelValue, info: [])
        case .cgroupIterator(let order):
            // union bpf_iter_link_info, cgroup: order (u32), cgroup_fd (u32), cgroup_id (u64).
            var info: [UInt8] = []
            withUnsafeBytes(of: order.kernelValue.littleEndian) { info += $0 }
            withUnsafeBytes(of: UInt32(0)) { info += $0 }
            withUnsafeBytes(of: cgroupID.littleEndian) { info += $0 }
            program.putLink(op, programFD: programFD, targetFD: 0, attachType: AttachType.traceIter.kernelValue,
                            info: info, infoOffset: op * info.count)
        }
    }
}
