import BPFTreeCore
import CBPFTreeShim
import Glibc

/// Which loaded programs use which maps, from each program's map ids (`BPF_OBJ_GET_INFO_BY_FD`). A pin is
/// only a name: programs that hold a map keep using it after its pin is replaced.
public enum ProgramTable {
    /// The programs using each of `mapIDs`, by one walk over every loaded program.
    public static func users(of mapIDs: Set<UInt32>) throws(KernelError) -> [UInt32: [LoadedProgram]] {
        guard !mapIDs.isEmpty else { return [:] }
        var users: [UInt32: [LoadedProgram]] = [:]
        var after: UInt32 = 0
        var maps = [UInt32](repeating: 0, count: 256)
        while true {
            var id: UInt32 = 0, count: UInt32 = 0
            var name = [CChar](repeating: 0, count: 16)
            let result = maps.withUnsafeMutableBufferPointer { buffer in
                bt_prog_next(after, &id, &name, buffer.baseAddress, UInt32(buffer.count), &count)
            }
            if result == -ENOENT { return users }
            guard result == 0 else { throw KernelError(.bpf(.progGetNextID), path: "programs", negativeErrno: result) }
            after = id
            let text = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            for map in maps.prefix(Int(count)) where mapIDs.contains(map) {
                users[map, default: []].append(LoadedProgram(id: id, name: text))
            }
        }
    }

    /// The facts planning needs about the maps of `desired` that differ from what `live` shows: the entry
    /// counts of those `policies` would migrate (hash-like maps) and the programs using any of them.
    public static func facts(_ desired: DesiredTree, live: LiveTree, policies: PolicySet,
                             anchor: Anchor) throws(KernelError) -> KernelFacts {
        let differing = desired.differingMaps(in: live, policies)
        guard !differing.isEmpty else { return KernelFacts() }
        var facts = KernelFacts()
        for map in differing where map.migrates && !map.spec.type.isArray {
            facts.entryCounts[map.path] = try MapEntries.count(anchor: anchor, path: map.path, keySize: map.live.keySize)
        }
        facts.mapUsers = try users(of: Set(differing.map(\.live.id)))
        return facts
    }
}
