import BPFTreeCore
import CBPFTreeShim
import Glibc

/// A loaded BPF program that uses a map.
public struct ProgramReference: Hashable, Sendable, CustomStringConvertible {
    public var id: UInt32
    public var name: String
    public var description: String { name.isEmpty ? "id \(id)" : "id \(id) (\(name))" }
}

/// Which loaded programs use which maps, from each program's map ids (`BPF_OBJ_GET_INFO_BY_FD`). A pin is
/// only a name: programs that hold a map keep using it after its pin is replaced.
public enum ProgramTable {
    /// The programs using each of `mapIDs`, by one walk over every loaded program.
    public static func users(of mapIDs: Set<UInt32>) throws(KernelError) -> [UInt32: [ProgramReference]] {
        guard !mapIDs.isEmpty else { return [:] }
        var users: [UInt32: [ProgramReference]] = [:]
        var after: UInt32 = 0
        var maps = [UInt32](repeating: 0, count: 256)
        while true {
            var id: UInt32 = 0, count: UInt32 = 0
            var name = [CChar](repeating: 0, count: 16)
            let result = maps.withUnsafeMutableBufferPointer { buffer in
                bt_prog_next(after, &id, &name, buffer.baseAddress, UInt32(buffer.count), &count)
            }
            if result == -ENOENT { return users }
            guard result == 0 else { throw KernelError("BPF_PROG_GET_NEXT_ID", path: "programs", negativeErrno: result) }
            after = id
            let text = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            for map in maps.prefix(Int(count)) where mapIDs.contains(map) {
                users[map, default: []].append(ProgramReference(id: id, name: text))
            }
        }
    }

}
