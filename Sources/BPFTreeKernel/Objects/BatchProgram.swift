import CBPFTreeShim
import FoundationEssentials
import Glibc
import Synchronization

/// The batch syscall program of `bpf/batch.bpf.c`, loaded with libbpf from the object embedded at build
/// time. One `run` creates, fills and freezes a whole batch of maps inside the kernel; the new map fds
/// land in this process's fd table (ARCHITECTURE.md: syscall programs cannot pin, so pinning stays here).
/// Sendable because it has one user at a time: whoever `take`s it from the pool until it is given back.
final class BatchProgram: @unchecked Sendable {
    private let handle: OpaquePointer

    static let maxOps = Int(bt_batch_max_ops())
    /// Why it needs CAP_BPF and CAP_PERFMON: the kernel offers syscall programs `bpf_sys_bpf` only with CAP_PERFMON.
    static let needs = "the batch program (a syscall program calling bpf_sys_bpf) that creates maps and links"
    static let dataSize = Int(bt_batch_data_size())

    init() throws(KernelError) {
        guard let object = Data(base64Encoded: embeddedBPFObject_batch) else {
            throw KernelError(.step(.loadBatchProgram), path: "bpf/batch.bpf.c", detail: "embedded object is corrupt")
        }
        var handle: OpaquePointer?
        var message = [CChar](repeating: 0, count: 512)
        let result = object.withUnsafeBytes { bytes in
            bt_batch_open(bytes.baseAddress, bytes.count, &handle, &message, message.count)
        }
        guard result == 0, let handle else {
            // bpftree's oldest kernel: the batch program is a syscall program calling bpf_sys_bpf (Linux 5.14).
            if let missing = KernelFeatures.missing("BPF_PROG_TYPE_SYSCALL", what: "syscall programs, which bpftree makes objects with",
                                                    since: "Linux 5.14; bpftree is tested from 6.1") {
                throw KernelError(.step(.loadBatchProgram), path: "bpf/batch.bpf.c", negativeErrno: result == 0 ? -ENOENT : result, detail: missing)
            }
            let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw KernelError(.step(.loadBatchProgram), path: "bpf/batch.bpf.c", negativeErrno: result == 0 ? -ENOENT : result,
                              detail: KernelError.privilegeHint(result)
                                ?? KernelError.capabilityHint(result, needs: [.bpf, .perfmon], for: Self.needs, alsoFor: [-EINVAL])
                                ?? (text.isEmpty ? nil : String(text.reversed().drop(while: \.isWhitespace).reversed())))
        }
        self.handle = handle
    }

    deinit { bt_batch_close(handle) }

    /// Programs loaded before and handed back: loading one costs a verifier run (tens of milliseconds), so a
    /// long-running service loads it once. One user at a time: `take` removes it from the pool.
    private static let pool = Mutex<[BatchProgram]>([])

    /// A program from the pool, or a new one.
    static func take() throws(KernelError) -> BatchProgram {
        if let pooled = pool.withLock({ $0.popLast() }) { return pooled }
        return try BatchProgram()
    }

    /// Hands `program` back for the next `take`.
    static func giveBack(_ program: BatchProgram) {
        pool.withLock { $0.append(program) }
    }

    func putCreate(_ index: Int, type: UInt32, keySize: UInt32, valueSize: UInt32, maxEntries: UInt32, flags: UInt32,
                   numaNode: UInt32, mapExtra: UInt64, name: String) {
        bt_batch_put_create(handle, UInt32(index), type, keySize, valueSize, maxEntries, flags, numaNode, mapExtra, name)
    }

    func putUpdate(_ index: Int, createIndex: Int, keyOffset: Int, valueOffset: Int, valueLength: Int) {
        bt_batch_put_update(handle, UInt32(index), UInt32(createIndex), UInt32(keyOffset), UInt32(valueOffset),
                            UInt32(valueLength), 0)
    }

    func putFreeze(_ index: Int, createIndex: Int) {
        bt_batch_put_freeze(handle, UInt32(index), UInt32(createIndex))
    }

    /// A LINK_CREATE op; `info` (an iterator's `bpf_iter_link_info`) goes into the data area at `infoOffset`.
    /// `target`: a cgroup fd, an XDP link's interface index, or 0 for an iterator.
    func putLink(_ index: Int, program: Descriptor, target: UInt32, attachType: UInt32, flags: UInt32, relativeID: UInt32,
                 info: [UInt8], infoOffset: Int = 0) {
        // link_create's union after flags: a tcx link's relative_id; zeros (no cookie) for the rest.
        var args: [UInt8] = []
        withUnsafeBytes(of: relativeID.littleEndian) { args += $0 }
        putLink(index, program: program, target: target, attachType: attachType, flags: flags, args: args, info: info,
                infoOffset: infoOffset)
    }

    /// Op `index` with `args`, link_create's bytes after flags (at most 48): pointers among them are
    /// read by the kernel from this process's memory when the batch runs.
    func putLink(_ index: Int, program: Descriptor, target: UInt32, attachType: UInt32, flags: UInt32, args: [UInt8],
                 info: [UInt8], infoOffset: Int = 0) {
        info.withUnsafeBytes { raw in
            args.withUnsafeBytes { argBytes in
                bt_batch_put_link(handle, UInt32(index), program.rawValue, target, attachType, flags, argBytes.baseAddress,
                                  UInt32(argBytes.count), UInt32(infoOffset), raw.baseAddress, UInt32(raw.count))
            }
        }
    }

    /// Op `index`: a raw tracepoint link of `program` at `name`, which the kernel reads from this
    /// process's memory when the batch runs: it must stay allocated until then.
    func putRawTracepoint(_ index: Int, program: Descriptor, name: UnsafePointer<CChar>) {
        bt_batch_put_raw_tracepoint(handle, UInt32(index), program.rawValue, name)
    }

    /// Copies bytes into the program's data area at `offset`.
    func write(_ bytes: [UInt8], at offset: Int) {
        let data = bt_batch_data(handle)
        bytes.withUnsafeBufferPointer { source in
            guard let base = source.baseAddress, let data else { return }
            (data + offset).update(from: base, count: source.count)
        }
    }

    /// Runs ops `0..<count` in one `BPF_PROG_TEST_RUN`.
    func run(count: Int) throws(KernelError) {
        let result = bt_batch_run(handle, UInt32(count))
        guard result >= 0 else { throw KernelError(.bpf(.progTestRun), path: "batch program", negativeErrno: result) }
    }

    /// The result of op `index` of the last run: an fd for a create, 0 for update and freeze, or -errno.
    func result(_ index: Int) -> Int32 { bt_batch_result(handle, UInt32(index)) }
}
