import Foundation
import Glibc

/// A test-owned cgroup v2 directory (under the cgroup2 mount from /proc/self/mountinfo), removed with
/// every cgroup made in it when released.
final class ScratchCgroup {
    /// Path relative to the cgroup2 mount, as a manifest's `forEachCgroup.path` gives it.
    let relative: String
    let path: String

    init() throws {
        guard let mount = Self.cgroup2Mount() else { throw HarnessError(description: "no cgroup2 mount in /proc/self/mountinfo") }
        relative = "bpftree-test-" + String(UUID().uuidString.prefix(8))
        path = mount + "/" + relative
        guard mkdir(path, 0o755) == 0 else { throw HarnessError(description: "mkdir \(path): errno \(errno)") }
    }

    deinit {
        // Deepest first: rmdir on cgroupfs removes one empty cgroup.
        let found = (try? run(["find", path, "-mindepth", "1", "-type", "d"]).stdout) ?? ""
        for directory in found.split(separator: "\n").sorted(by: { $0.count > $1.count }) { rmdir(String(directory)) }
        rmdir(path)
    }

    /// Makes cgroup `name` (e.g. `w1` or `a/w1`) and returns its id (its inode on cgroup2).
    @discardableResult
    func make(_ name: String) throws -> UInt64 {
        guard mkdir(path + "/" + name, 0o755) == 0 else { throw HarnessError(description: "mkdir \(name): errno \(errno)") }
        return try id(name)
    }

    func remove(_ name: String) throws {
        guard rmdir(path + "/" + name) == 0 else { throw HarnessError(description: "rmdir \(name): errno \(errno)") }
    }

    func id(_ name: String) throws -> UInt64 {
        var st = stat()
        guard stat(path + "/" + name, &st) == 0 else { throw HarnessError(description: "stat \(name): errno \(errno)") }
        return UInt64(st.st_ino)
    }

    /// The cgroup id from the kernel's file handle (name_to_handle_at through python3's ctypes): what
    /// `bpf_get_current_cgroup_id` returns for a task in that cgroup.
    func kernelID(_ name: String) throws -> UInt64 {
        let script = """
            import ctypes, struct, sys
            libc = ctypes.CDLL(None, use_errno=True)
            buf = ctypes.create_string_buffer(8 + 128)
            struct.pack_into("I", buf, 0, 128)
            mount = ctypes.c_int()
            if libc.name_to_handle_at(-100, sys.argv[1].encode(), buf, ctypes.byref(mount), 0) != 0:
                sys.exit("name_to_handle_at: errno %d" % ctypes.get_errno())
            size, kind = struct.unpack_from("Ii", buf, 0)
            print(struct.unpack_from("Q", buf, 8)[0])
            """
        let result = try run(["python3", "-c", script, path + "/" + name])
        guard result.status == 0, let id = UInt64(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw HarnessError(description: "cgroup id of \(name): \(result.output)")
        }
        return id
    }

    static func cgroup2Mount() -> String? {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count, fields[dash + 1] == "cgroup2" { return String(fields[4]) }
        }
        return nil
    }
}

/// A manifest rendered per cgroup of `source` (relative to the cgroup2 mount) at `depth`.
func cgroupTemplate(source: String, depth: Int = 1, root: String = "jobs/A/{cgroup.id}", name: String = "job-a-cgroups") -> String {
    """
    apiVersion: bpftree/v1
    kind: Tree
    metadata: {name: \(name)}
    spec:
      forEachCgroup: {path: \(source), depth: \(depth)}
      root: \(root)
      entries:
        stats: {map: {type: array, keySize: 4, valueSize: 8, maxEntries: 4, contents: [{key: 0, value: 7}]}}
    """
}

/// Polls `condition` every 20 ms for up to `seconds`.
func eventually(within seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        usleep(20_000)
    }
    return try condition()
}
