import BPFTreeCore
import CBPFTreeShim
import Dispatch
import Glibc
import Synchronization
import SystemPackage

/// The executor's kernel calls, made beneath an anchor: `mkdirat`, `fstatat`, `fchmodat2`/`fchownat`,
/// `BPF_OBJ_PIN`/`BPF_OBJ_GET` relative to the parent directory (`BPF_F_PATH_FD`), `renameat2`, `unlinkat`,
/// the batch syscall program (loaded on first use) and the ledger map.
public final class LiveKernel: KernelOperations {
    public let anchor: Anchor
    public let batchLimits: BatchLimits
    public let possibleCPUs = Machine.possibleCPUs
    private let ledger: LedgerStore
    private let directories: DirectoryChain
    private var program: BatchProgram?

    /// `maxMapsPerBatch`: at most this many maps per run, and within the open-file limit (raised here).
    public init(anchor: Anchor, ledger: LedgerStore, maxMapsPerBatch: Int = 1024) {
        self.anchor = anchor
        self.ledger = ledger
        self.directories = DirectoryChain(anchor: anchor)
        let fileLimit = bt_raise_nofile_limit()
        batchLimits = BatchLimits(maxOps: BatchProgram.maxOps, dataSize: BatchProgram.dataSize,
                                  maxMaps: min(maxMapsPerBatch, fileLimit > 0 ? fileLimit - 64 : 512))
    }

    deinit {
        if let program { BatchProgram.giveBack(program) }
    }

    public func makeDirectory(_ path: TreePath) throws(KernelError) {
        let parent = try directories.descriptor(for: path.parent).rawValue
        let result = withKernelName(path.name) { name in retryingEINTR { mkdirat(parent, name, 0o700) } }
        guard result == 0 else { throw KernelError(.call(.mkdirat), path: path.description, negativeErrno: result) }
    }

    public func status(_ path: TreePath) throws(KernelError) -> EntryStatus {
        try Self.status(path, in: directories.descriptor(for: path.parent))
    }

    private static func status(_ path: TreePath, in parent: FileDescriptor) throws(KernelError) -> EntryStatus {
        var st = Glibc.stat()
        let result = withKernelName(path.name) { name in retryingEINTR { fstatat(parent.rawValue, name, &st, Int32(BT_AT_SYMLINK_NOFOLLOW)) } }
        guard result == 0 else { throw KernelError(.call(.fstatat), path: path.description, negativeErrno: result) }
        return EntryStatus(inode: UInt64(st.st_ino), mode: st.st_mode & 0o7777, uid: st.st_uid, gid: st.st_gid,
                           isDirectory: st.st_mode & S_IFMT == S_IFDIR)
    }

    public func setAttributes(_ path: TreePath, mode: UInt32?, owner: Owner) throws(KernelError) {
        let (directory, name, flags): (Int32, String, Int32) = path.isAnchor
            ? (anchor.fd.rawValue, "", Int32(BT_AT_EMPTY_PATH))
            : (try directories.descriptor(for: path.parent).rawValue, path.name, Int32(BT_AT_SYMLINK_NOFOLLOW))
        if let mode {
            let result = withKernelName(name) { bt_fchmodat2(directory, $0, mode, flags) }
            guard result == 0 else {
                throw KernelError(.call(.fchmodat2), path: path.description, negativeErrno: result)
                    .adding(KernelError.capabilityHint(result, needs: [.fowner], for: "changing the mode of an entry of another owner"))
            }
        }
        if owner.isManaged {
            // (uid_t)-1 leaves that half unchanged.
            let result = withKernelName(name) { raw in
                retryingEINTR { fchownat(directory, raw, owner.uid ?? UInt32.max, owner.gid ?? UInt32.max, flags) }
            }
            guard result == 0 else {
                throw KernelError(.call(.fchownat), path: path.description, negativeErrno: result)
                    .adding(KernelError.capabilityHint(result, needs: [.chown], for: "giving an entry another owner"))
            }
        }
    }

    public func pin(_ object: Descriptor, at path: TreePath) throws(KernelError) {
        try Self.pin(object, at: path, in: directories.descriptor(for: path.parent))
    }

    private static func pin(_ object: Descriptor, at path: TreePath, in parent: FileDescriptor) throws(KernelError) {
        let pinned = withKernelName(path.name) { bt_obj_pin_at(parent.rawValue, $0, object.rawValue) }
        guard pinned == 0 else { throw KernelError(.bpf(.objPin), path: path.description, negativeErrno: pinned) }
    }

    /// Many pins (a batch run's maps) are made in consecutive runs on several threads, each with its own
    /// directory chain: a pin and its `fstatat` are path walks and inode work in the kernel, a third of a
    /// cold apply's time, and they scale while the directories differ.
    public func pin(_ pins: [(object: Descriptor, path: TreePath)]) -> [PinOutcome?] {
        let parts = pins.count >= 64 ? TreeObserver.availableWorkers : 1
        guard parts > 1 else { return Self.pin(pins[...], chain: directories) }
        let anchor = self.anchor
        let outcomes = Mutex([PinOutcome?](repeating: nil, count: pins.count))
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let run = (pins.count * part / parts)..<(pins.count * (part + 1) / parts)
            let made = Self.pin(pins[run], chain: DirectoryChain(anchor: anchor))
            outcomes.withLock { $0.replaceSubrange(run, with: made) }
        }
        return outcomes.withLock { $0 }
    }

    /// Pins `pins` in order through `chain`, stopping at the first refusal (the rest nil).
    private static func pin(_ pins: ArraySlice<(object: Descriptor, path: TreePath)>, chain: DirectoryChain) -> [PinOutcome?] {
        PinOutcome.inOrder(pins, pin: { (object, path) throws(KernelError) in
            try Self.pin(object, at: path, in: chain.descriptor(for: path.parent))
        }, status: { (path) throws(KernelError) in
            try Self.status(path, in: chain.descriptor(for: path.parent))
        })
    }

    public func rename(_ path: TreePath, to name: String, exchange: Bool) throws(KernelError) {
        let parent = try directories.descriptor(for: path.parent).rawValue
        let flags = UInt32(exchange ? BT_RENAME_EXCHANGE : BT_RENAME_NOREPLACE)
        let result = withKernelName(path.name) { from in withKernelName(name) { bt_renameat2(parent, from, parent, $0, flags) } }
        guard result == 0 else {
            let target = path.parent.appending(name).description
            throw exchange
                ? KernelError(.call(.renameExchange), path: target, negativeErrno: result)
                : KernelError(.call(.renameNoReplace), path: target, negativeErrno: result,
                              detail: result == -EEXIST ? "something else was made at the path meanwhile" : nil)
        }
    }

    public func unlink(_ path: TreePath, directory: Bool) throws(KernelError) {
        let parent = try directories.descriptor(for: path.parent).rawValue
        let result = withKernelName(path.name) { name in retryingEINTR { unlinkat(parent, name, directory ? AT_REMOVEDIR : 0) } }
        guard result == 0 || result == -ENOENT else {
            throw KernelError(.call(directory ? .rmdir : .unlinkat), path: path.description, negativeErrno: result,
                              detail: result == -ENOTEMPTY ? "the directory is not empty" : nil)
        }
    }

    public func removeTemporary(_ path: TreePath) throws(KernelError) {
        let entry: EntryStatus
        do {
            entry = try status(path)
        } catch where error.errno == .noSuchFileOrDirectory {
            return
        }
        guard entry.isDirectory else { return try unlink(path, directory: false) }
        try removeContents(of: path)
        try unlink(path, directory: true)
    }

    private func removeContents(of path: TreePath) throws(KernelError) {
        let parent = try directories.descriptor(for: path.parent).rawValue
        let directory = try anchor.openDirectory(path.name, from: FileDescriptor(rawValue: parent), readable: true, displayPath: path)
        for name in try TreeObserver.names(in: directory, path: path) {
            var st = Glibc.stat()
            let result = withKernelName(name) { raw in retryingEINTR { fstatat(directory.rawValue, raw, &st, Int32(BT_AT_SYMLINK_NOFOLLOW)) } }
            guard result == 0 else { throw KernelError(.call(.fstatat), path: path.appending(name).description, negativeErrno: result) }
            let isDirectory = st.st_mode & S_IFMT == S_IFDIR
            if isDirectory { try removeContents(of: path.appending(name)) }
            let removed = withKernelName(name) { raw in retryingEINTR { unlinkat(directory.rawValue, raw, isDirectory ? AT_REMOVEDIR : 0) } }
            guard removed == 0 || removed == -ENOENT else {
                throw KernelError(.call(isDirectory ? .rmdir : .unlinkat), path: path.appending(name).description, negativeErrno: removed)
            }
        }
    }

    public func openPin(_ path: TreePath) throws(KernelError) -> Descriptor {
        let parent = try directories.descriptor(for: path.parent).rawValue
        let fd = withKernelName(path.name) { bt_obj_get_at(parent, $0) }
        guard fd >= 0 else {
            throw KernelError(.bpf(.objGet), path: path.description, negativeErrno: fd)
                .adding(KernelError.capabilityHint(fd, needs: [.dacOverride], for: KernelError.pinAccess))
        }
        return Descriptor(owning: fd)
    }

    public func openCgroup(_ cgroup: String, id: UInt64, for link: TreePath) throws(KernelError) -> Descriptor {
        let (descriptor, found) = try PinResolver.openCgroup(path: cgroup)
        guard found == id else {
            throw KernelError(.step(.createLink), path: link.description,
                              detail: "cgroup \(cgroup) is id \(found) now, planned \(id); run apply again")
        }
        return descriptor
    }

    public func openNamespace(_ path: String, inode: UInt64, for link: TreePath) throws(KernelError) -> Descriptor {
        let (descriptor, found) = try PinResolver.openNamespace(path)
        guard found == inode else {
            throw KernelError(.step(.createLink), path: link.description,
                              detail: "network namespace \(path) is inode \(found) now, planned \(inode); run apply again")
        }
        return descriptor
    }

    public func checkInterface(_ name: String, index: UInt32, for link: TreePath) throws(KernelError) {
        let found = try PinResolver.interfaceIndex(name).get()
        guard found == index else {
            throw KernelError(.step(.createLink), path: link.description,
                              detail: "interface \(name) is index \(found) now, planned \(index) (renamed or made again meanwhile); run apply again")
        }
    }

    public func openPerfEvent(_ resolved: ResolvedLink, for link: TreePath) throws(KernelError) -> Descriptor {
        try ProbeTargets.openPerfEvent(resolved, for: link)
    }

    public func objectID(_ object: Descriptor, path: TreePath) throws(KernelError) -> (id: UInt32, isLink: Bool) {
        switch bt_fd_object_kind(object.rawValue) {
        case Int32(BT_OBJECT_PROG.rawValue):
            var info = bt_prog_info()
            let result = bt_prog_info_by_fd(object.rawValue, &info)
            guard result == 0 else { throw KernelError(.bpf(.objGetInfoByFD), path: path.description, negativeErrno: result) }
            return (info.id, false)
        case Int32(BT_OBJECT_LINK.rawValue):
            var info = bt_link_info()
            let result = bt_link_info_by_fd(object.rawValue, &info)
            guard result == 0 else { throw KernelError(.bpf(.objGetInfoByFD), path: path.description, negativeErrno: result) }
            return (info.id, true)
        default:
            throw KernelError(.bpf(.objGetInfoByFD), path: path.description, detail: "neither a program nor a link")
        }
    }

    public func detachLink(_ path: TreePath) throws(KernelError) {
        try detach(try openPin(path), path)
    }

    public func detachLinkForSuccessor(_ path: TreePath) throws(KernelError) -> DetachedLink {
        let link = try openPin(path)
        let detached = DetachedLink(link: link, at: path, record: try ledger.record(at: path))
        try detach(link, path)
        return detached
    }

    private func detach(_ link: Descriptor, _ path: TreePath) throws(KernelError) {
        let result = bt_link_detach(link.rawValue)
        guard result == 0 else { throw KernelError(.bpf(.linkDetach), path: path.description, negativeErrno: result) }
    }

    public func reattach(_ detached: DetachedLink, renamed: [UInt32: UInt32]) throws(KernelError) -> (Descriptor, id: UInt32) {
        let operation = KernelOperation.step(.attachAgain)
        let results = try run([try detached.reattachment(renamed: renamed)])
        guard let result = results.first else { throw KernelError(operation, path: detached.path.description, detail: "no result") }
        let link = try result.object(operation, path: detached.path)
        return (link, try objectID(link, path: detached.path).id)
    }

    public func updateLink(_ path: TreePath, to program: TreePath, expecting: UInt32) throws(KernelError) {
        let link = try openPin(path)
        let new = try openPin(program)
        let result = bt_link_update(link.rawValue, new.rawValue, expecting)
        guard result == 0 else {
            let detail: String? = switch result {
            case -ENOENT: "its program (id \(expecting)) is gone"
            case -EPERM: "it holds another program than program id \(expecting) now; run apply again"
            default: nil
            }
            throw KernelError(.bpf(.linkUpdate), path: path.description, negativeErrno: result, detail: detail)
        }
    }

    /// The batch program, loaded on first use (a plan without maps or links never loads it).
    private func batchProgram() throws(KernelError) -> BatchProgram {
        if let program { return program }
        let loaded = try BatchProgram.take()
        program = loaded
        return loaded
    }

    public func run(_ batch: MapBatch) throws(KernelError) -> [BatchResult] {
        let program = try batchProgram()
        var dataUsed = 0
        for (index, op) in batch.ops.enumerated() {
            switch op {
            case .create(let spec):
                program.putCreate(index, type: spec.type.kernelValue, keySize: spec.keySize, valueSize: spec.valueSize,
                                  maxEntries: spec.maxEntries, flags: spec.flags, numaNode: spec.numaNode ?? 0,
                                  mapExtra: spec.mapExtra, name: spec.name)
            case .update(let create, let key, let value):
                program.write(key, at: dataUsed)
                program.write(value, at: dataUsed + key.count)
                program.putUpdate(index, createIndex: create, keyOffset: dataUsed, valueOffset: dataUsed + key.count,
                                  valueLength: value.count)
                dataUsed += key.count + value.count
            case .freeze(let create):
                program.putFreeze(index, createIndex: create)
            }
        }
        try program.run(count: batch.ops.count)
        return batch.ops.indices.map { index in
            let result = program.result(index)
            guard result >= 0 else { return .refused(result) }
            if case .create = batch.ops[index] { return .made(Descriptor(owning: result)) }
            return .done
        }
    }

    public func run(_ links: [LinkOp]) throws(KernelError) -> [BatchResult] {
        let program = try batchProgram()
        var offset = 0
        // Raw tracepoint names and uprobe_multi paths and offsets, read by the kernel from this memory
        // during the run.
        var names: [UnsafeMutablePointer<CChar>] = []
        var arrays: [UnsafeMutableBufferPointer<UInt64>] = []
        defer {
            names.forEach { free($0) }
            arrays.forEach { $0.deallocate() }
        }
        for (index, link) in links.enumerated() {
            if let probe = link.kprobeMulti {
                // link_create.kprobe_multi: flags, cnt, syms (an array of name pointers), addrs, cookies.
                let symbols = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: max(1, probe.functions.count))
                arrays.append(symbols)
                for (position, function) in probe.functions.enumerated() {
                    guard let name = strdup(function) else { throw KernelError(.call(.strdup), path: function, negativeErrno: -ENOMEM) }
                    names.append(name)
                    symbols[position] = UInt64(UInt(bitPattern: name))
                }
                var args: [UInt8] = []
                for word in [probe.flags, UInt32(probe.functions.count)] { withUnsafeBytes(of: word.littleEndian) { args += $0 } }
                for word in [UInt64(UInt(bitPattern: symbols.baseAddress)), 0, 0] { withUnsafeBytes(of: word.littleEndian) { args += $0 } }
                program.putLink(index, program: link.program, target: 0, attachType: link.attachType, flags: 0,
                                args: args, info: [])
                continue
            }
            if let probe = link.uprobeMulti {
                guard let path = strdup(probe.file) else { throw KernelError(.call(.strdup), path: probe.file, negativeErrno: -ENOMEM) }
                names.append(path)
                let offsets = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: max(1, probe.offsets.count))
                _ = offsets.initialize(from: probe.offsets)
                arrays.append(offsets)
                // link_create.uprobe_multi: path, offsets, ref_ctr_offsets, cookies, cnt, flags, pid.
                var args: [UInt8] = []
                for word in [UInt64(UInt(bitPattern: path)), UInt64(UInt(bitPattern: offsets.baseAddress)), 0, 0] {
                    withUnsafeBytes(of: word.littleEndian) { args += $0 }
                }
                for word in [UInt32(probe.offsets.count), probe.flags, probe.pid] {
                    withUnsafeBytes(of: word.littleEndian) { args += $0 }
                }
                program.putLink(index, program: link.program, target: 0, attachType: link.attachType, flags: 0,
                                args: args, info: [])
                continue
            }
            if let name = link.rawTracepoint {
                guard let copy = strdup(name) else { throw KernelError(.call(.strdup), path: name, negativeErrno: -ENOMEM) }
                names.append(copy)
                program.putRawTracepoint(index, program: link.program, name: copy)
                continue
            }
            if !link.args.isEmpty {
                program.putLink(index, program: link.program, target: 0, attachType: link.attachType, flags: link.flags,
                                args: link.args, info: [])
                continue
            }
            let target = link.target.map { UInt32(bitPattern: $0.rawValue) } ?? link.interfaceIndex
            program.putLink(index, program: link.program, target: target, attachType: link.attachType,
                            flags: link.flags, relativeID: link.relativeID, info: link.info, infoOffset: offset)
            offset += link.info.count
        }
        try program.run(count: links.count)
        return links.indices.map { index in
            let result = program.result(index)
            return result >= 0 ? .made(Descriptor(owning: result)) : .refused(result)
        }
    }

    public func write(_ contents: [(key: [UInt8], value: [UInt8])], into map: Descriptor, path: TreePath) throws(KernelError) {
        for (position, entry) in contents.enumerated() {
            let result = entry.value.withUnsafeBytes { v in
                entry.key.withUnsafeBytes { k in
                    bt_map_update(map.rawValue, entry.key.isEmpty ? nil : k.baseAddress, v.baseAddress, 0)
                }
            }
            guard result == 0 else {
                throw KernelError(.bpf(.mapUpdateElem, entry: position), path: path.description, negativeErrno: result)
            }
        }
    }

    public func freeze(_ map: Descriptor, path: TreePath) throws(KernelError) {
        let frozen = bt_map_freeze(map.rawValue)
        guard frozen == 0 else { throw KernelError(.bpf(.mapFreeze), path: path.description, negativeErrno: frozen) }
    }

    public func copyEntries(from path: TreePath, id: UInt32, into new: Descriptor, keySize: UInt32,
                            valueLength: Int) throws(KernelError) -> UInt64 {
        let old = try openPin(path)
        var info = bt_map_info()
        let got = bt_map_info_by_fd(old.rawValue, &info)
        guard got == 0, info.id == id else {
            throw KernelError(.step(.migrate), path: path.description, negativeErrno: got,
                              detail: got == 0 ? "the map changed since it was planned (id \(info.id), planned \(id)); run apply again" : nil)
        }
        var count: UInt64 = 0
        let result = bt_map_copy(old.rawValue, new.rawValue, keySize, UInt32(valueLength), &count)
        guard result == 0 else {
            throw KernelError(.step(.copyEntries), path: path.description, negativeErrno: result,
                              detail: "\(count) entries copied before the failure; the old map is unchanged and still pinned")
        }
        return count
    }

    public func load(_ specs: [ProgramSpec], maps: [(name: String, map: Descriptor)],
                     path: TreePath) throws(KernelError) -> [(Descriptor, tag: UInt64)] {
        guard let first = specs.first else { return [] }
        let bytes: [UInt8]
        switch FileBytes.read(first.objectPath) {
        case .success(let read): bytes = read
        case .failure(let error):
            throw KernelError(.step(.readObject), path: first.objectPath, negativeErrno: -error.errno)
        }
        let result = withExtendedLifetime(maps) {
            ProgramLoader.load(specs, bytes: bytes, maps: maps, keep: true)
        }
        switch result {
        case .failure(let failure):
            throw KernelError(.step(.loadProgram), path: path.description, detail: failure.message)
        case .success(let loaded):
            var programs: [(Descriptor, tag: UInt64)] = []
            for (image, descriptor) in loaded {
                guard let descriptor else { throw KernelError(.step(.loadProgram), path: path.description, detail: "libbpf gave no fd") }
                programs.append((descriptor, image.tag))
            }
            return programs
        }
    }

    public func record(_ records: [LedgerRecord]) throws(KernelError) { try ledger.write(records) }

    public func forget(_ paths: [TreePath]) throws(KernelError) { try ledger.remove(paths) }
}
