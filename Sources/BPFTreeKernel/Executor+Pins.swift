import BPFTreeCore
import CBPFTreeShim
import Glibc

/// Programs and links: programs are loaded with libbpf and pinned one by one; links are created in
/// batches by the syscall program (`BT_OP_LINK_CREATE`) and pinned.
extension Executor {
    /// Loads each program (its maps bound to the declared pins) and pins it. Stops at the first failure.
    func createPrograms(_ actions: some Collection<Action>, record: (ActionResult) -> Void) {
        var failed = false
        for action in actions {
            guard !failed else {
                record(ActionResult(action: action, outcome: .notDone))
                continue
            }
            let spec: ProgramSpec, mode: UInt32, owner: Owner, replacing: Bool
            switch action.change {
            case .createProgram(let s, let m, let o): (spec, mode, owner, replacing) = (s, m, o, false)
            case .replaceProgram(let s, let m, let o, _): (spec, mode, owner, replacing) = (s, m, o, true)
            default: continue
            }
            do throws(KernelError) {
                let (descriptor, tag) = try load(spec, for: action.path)
                try pin(descriptor, at: action.path, kind: .program, fingerprint: tag, mode: mode, owner: owner,
                        manifest: action.manifest, replacing: replacing)
                record(ActionResult(action: action, outcome: .done))
            } catch {
                record(ActionResult(action: action, outcome: .failed(error)))
                failed = true
            }
        }
    }

    /// The program loaded from its object, with its bound maps taken from their pins; refused when the
    /// object no longer gives the program that was planned.
    private func load(_ spec: ProgramSpec, for path: TreePath) throws(KernelError) -> (Descriptor, UInt64) {
        let bytes: [UInt8]
        switch FileBytes.read(spec.objectPath) {
        case .success(let read): bytes = read
        case .failure(let error):
            throw KernelError("read BPF object", path: spec.objectPath, negativeErrno: -error.errno)
        }
        var held: [Descriptor] = []
        var maps: [(name: String, fd: Int32)] = []
        for binding in spec.maps {
            let parent = try directories.descriptor(for: binding.path.parent)
            let fd = bt_obj_get_at(parent, binding.path.name)
            guard fd >= 0 else { throw KernelError("BPF_OBJ_GET", path: binding.path.description, negativeErrno: fd) }
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
        var action: Action
        var spec: LinkSpec
        var mode: UInt32
        var owner: Owner
        var replacing: Bool
        var op: Int
    }

    /// Creates links in batches of the syscall program and pins them. Returns how many times it ran.
    func createLinks(_ actions: some Collection<Action>, record: (ActionResult) -> Void) -> Int {
        guard let program = batchProgram(for: actions, record: record) else { return 0 }
        // Each link holds a program fd and perhaps a cgroup fd until the run.
        let perRun = max(1, min(BatchProgram.maxOps, maxMapsPerBatch / 2))
        var runs = 0
        var failed = false
        var batch: [BatchedLink] = []
        var held: [Descriptor] = []

        func flush() {
            defer { batch.removeAll(); held.removeAll() }
            guard !batch.isEmpty else { return }
            guard !failed else {
                batch.forEach { record(ActionResult(action: $0.action, outcome: .notDone)) }
                return
            }
            do throws(KernelError) {
                try program.run(count: batch.count)
                runs += 1
            } catch {
                record(ActionResult(action: batch[0].action, outcome: .failed(error)))
                batch.dropFirst().forEach { record(ActionResult(action: $0.action, outcome: .notDone)) }
                failed = true
                return
            }
            held.removeAll()
            // Own every new fd at once so that all are closed, whatever happens below.
            let links = batch.map { link in
                let fd = program.result(link.op)
                return fd >= 0 ? Descriptor(owning: fd) : nil
            }
            for (link, descriptor) in zip(batch, links) {
                guard !failed else {
                    record(ActionResult(action: link.action, outcome: .notDone))
                    continue
                }
                do throws(KernelError) {
                    guard let descriptor else {
                        throw KernelError("BPF_LINK_CREATE (batch program)", path: link.action.path.description,
                                          negativeErrno: program.result(link.op))
                    }
                    try pin(descriptor, at: link.action.path, kind: .link, fingerprint: link.spec.fingerprint,
                            mode: link.mode, owner: link.owner, manifest: link.action.manifest, replacing: link.replacing)
                    record(ActionResult(action: link.action, outcome: .done))
                } catch {
                    record(ActionResult(action: link.action, outcome: .failed(error)))
                    failed = true
                }
            }
        }

        for action in actions {
            let spec: LinkSpec, mode: UInt32, owner: Owner, replacing: Bool
            switch action.change {
            case .createLink(let s, let m, let o): (spec, mode, owner, replacing) = (s, m, o, false)
            case .replaceLink(let s, let m, let o, _): (spec, mode, owner, replacing) = (s, m, o, true)
            default: continue
            }
            if failed {
                record(ActionResult(action: action, outcome: .notDone))
                continue
            }
            if batch.count >= perRun { flush() }
            do throws(KernelError) {
                try put(spec, op: batch.count, into: program, holding: &held, for: action.path)
                batch.append(BatchedLink(action: action, spec: spec, mode: mode, owner: owner, replacing: replacing, op: batch.count))
            } catch {
                record(ActionResult(action: action, outcome: .failed(error)))
                failed = true
            }
        }
        flush()
        return runs
    }

    /// Writes the LINK_CREATE op of `spec`: the program from its pin, and the cgroup (checked to be the
    /// one planned).
    private func put(_ spec: LinkSpec, op: Int, into program: BatchProgram, holding held: inout [Descriptor],
                     for path: TreePath) throws(KernelError) {
        let parent = try directories.descriptor(for: spec.program.parent)
        let programFD = bt_obj_get_at(parent, spec.program.name)
        guard programFD >= 0 else { throw KernelError("BPF_OBJ_GET", path: spec.program.description, negativeErrno: programFD) }
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

    /// Pins a new object at `path`, or, replacing, at a temporary name beside it, then exchanges the two
    /// names and removes the old pin (readers never see `path` missing). The ledger announces each step.
    func pin(_ object: Descriptor, at path: TreePath, kind: LedgerRecord.Kind, fingerprint: UInt64, mode: UInt32,
             owner: Owner, manifest: String, replacing: Bool) throws(KernelError) {
        let parent = try directories.descriptor(for: path.parent)
        guard replacing else {
            try ledger.write([LedgerRecord(path: path, kind: kind, state: .creating, fingerprint: fingerprint, manifest: manifest)])
            let pinned = bt_obj_pin_at(parent, path.name, object.rawValue)
            guard pinned == 0 else {
                try? ledger.remove([path])
                throw KernelError("BPF_OBJ_PIN", path: path.description, negativeErrno: pinned)
            }
            let inode = try settleAttributes(path, mode: mode, owner: owner)
            try ledger.write([LedgerRecord(path: path, kind: kind, inode: inode, fingerprint: fingerprint, manifest: manifest)])
            return
        }
        let temporary = nextTemporary(beside: path)
        try ledger.write([LedgerRecord(path: temporary, kind: kind, state: .temporary, manifest: manifest)])
        let pinned = bt_obj_pin_at(parent, temporary.name, object.rawValue)
        guard pinned == 0 else {
            try? ledger.remove([temporary])
            throw KernelError("BPF_OBJ_PIN", path: temporary.description, negativeErrno: pinned)
        }
        // Whatever happens, the temporary name goes: it holds the new object until the exchange, the old after.
        defer {
            _ = unlinkat(parent, temporary.name, 0)
            try? ledger.remove([temporary])
        }
        try setAttributes(temporary, mode: mode, owner: owner)
        let newInode = try exchange(temporary, into: path, parent: parent, kind: kind, fingerprint: fingerprint, manifest: manifest)
        try ledger.write([LedgerRecord(path: path, kind: kind, inode: newInode, fingerprint: fingerprint, manifest: manifest)])
    }
}
