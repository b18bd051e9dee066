import Foundation
import Glibc
import BPFTreeTestSupport
import Testing

@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment))
struct SafetyTests {
    @Test func aSymlinkWhereADirectoryIsDeclaredIsNeverFollowed() throws {
        let fs = try ScratchBPFFS()
        let manifests = try ManifestDirectory(["job.yaml": jobManifest])
        try FileManager.default.createDirectory(atPath: fs.at("elsewhere"), withIntermediateDirectories: false)
        #expect(symlink("elsewhere", fs.at("jobs")) == 0)
        let before = try fs.snapshot()
        for command in ["diff", "apply"] {
            let result = try bpftree([command, "-f", manifests.path, "--anchor", fs.path])
            #expect(result.status == 1)
            #expect(result.stderr.contains("jobs: is a symlink where a directory is declared"))
        }
        #expect(try fs.snapshot() == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: fs.at("elsewhere")).isEmpty)
    }

    @Test func aSymlinkInsideTheTreeIsReportedAndLeftAlone() throws {
        let fs = try ScratchBPFFS()
        let manifests = try ManifestDirectory(["job.yaml": jobManifest])
        try FileManager.default.createDirectory(atPath: fs.at("elsewhere"), withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: fs.at("jobs/A/stats"), withIntermediateDirectories: true)
        #expect(symlink("../../../elsewhere", fs.at("jobs/A/stats/escape")) == 0)
        let result = try bpftree(["apply", "-f", manifests.path, "--anchor", fs.path])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.stdout.contains("jobs/A/stats/escape: symlink left alone, never followed"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: fs.at("elsewhere")).isEmpty)
        #expect(try fs.shape().contains("jobs/A/stats/escape l 777"))
    }

    @Test func aPinWhereADirectoryIsDeclaredIsRefused() throws {
        let fs = try ScratchBPFFS()
        let manifests = try ManifestDirectory(["job.yaml": jobManifest])
        try FileManager.default.createDirectory(atPath: fs.at("jobs/A"), withIntermediateDirectories: true)
        try pinMapWithBpftool(fs.at("jobs/A/stats"), type: "array", key: 4, value: 4, entries: 1, name: "squatter")
        let before = try fs.snapshot()
        let result = try bpftree(["apply", "-f", manifests.path, "--anchor", fs.path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("jobs/A/stats: is a map where a directory is declared"))
        #expect(try fs.snapshot() == before)
    }

    /// Bad input files; each must be refused with file:line:column and leave the tree as it was.
    static let badManifests: [(name: String, files: [String: String], expect: String)] = [
        ("malformed YAML", ["bad.yaml": "apiVersion: [bpftree/v1\n"], "bad.yaml:2:1: malformed YAML"),
        ("unknown field", ["bad.yaml": jobManifest.replacingOccurrences(of: "freeze: true", with: "freez: true")],
         "bad.yaml:9:68: spec.entries.config.map.freez: unknown field 'freez'; did you mean 'freeze'?"),
        ("wrong type", ["bad.yaml": jobManifest.replacingOccurrences(of: "maxEntries: 16", with: "maxEntries: many")],
         "spec.entries.config.map.maxEntries: expected an integer, found 'many'"),
        ("missing field", ["bad.yaml": jobManifest.replacingOccurrences(of: "keySize: 2, ", with: "")],
         "spec.entries.lookup.map.keySize: missing required field 'keySize'"),
        ("dot in a name", ["bad.yaml": jobManifest.replacingOccurrences(of: "lookup:", with: "look.up:")],
         "bad.yaml:12:5: spec.entries.look.up: 'look.up' contains '.'"),
        ("absolute root", ["bad.yaml": jobManifest.replacingOccurrences(of: "root: jobs/A", with: "root: /jobs/A")],
         "bad.yaml:5:9: spec.root: absolute path"),
        ("ringbuf size", ["bad.yaml": jobManifest.replacingOccurrences(of: "maxEntries: 65536", with: "maxEntries: 65535")],
         "power of two"),
        ("contents wider than the value", ["bad.yaml": jobManifest.replacingOccurrences(of: "value: 100", with: "value: 0x1ffffffffffffffff")],
         "spec.entries.config.map.contents[0].value"),
        ("duplicate path across manifests", ["a.yaml": jobManifest,
                                             "b.yaml": jobManifest.replacingOccurrences(of: "name: job-a", with: "name: job-b")],
         "b.yaml:8:5: spec.entries.config: path 'jobs/A/config' is declared twice"),
        ("mode above 07777", ["bad.yaml": jobManifest.replacingOccurrences(of: "\"0640\"", with: "\"10640\"")],
         "above 07777"),
    ]

    @Test(arguments: badManifests.indices)
    func badInputChangesNothing(_ index: Int) throws {
        let input = Self.badManifests[index]
        let fs = try ScratchBPFFS()
        // A tree that already holds something, so "unchanged" means something.
        let good = try ManifestDirectory(["job.yaml": jobManifest])
        #expect(try bpftree(["apply", "-f", good.path, "--anchor", fs.path]).status == 0)
        try FileManager.default.removeItem(atPath: fs.at("jobs/A/lookup"))
        #expect(chmod(fs.at("jobs/A/stats"), 0o700) == 0)
        let before = try fs.snapshot()

        let manifests = try ManifestDirectory(input.files)
        for command in ["apply", "diff"] {
            let result = try bpftree([command, "-f", manifests.path, "--anchor", fs.path])
            #expect(result.status == 1, "\(input.name): \(result.output)")
            #expect(result.stderr.contains(input.expect), "\(input.name): \(result.stderr)")
            #expect(result.stderr.contains("nothing was changed"))
        }
        #expect(try fs.snapshot() == before, "\(input.name) changed the tree")
    }

    @Test func allErrorsOfARunAreReportedTogether() throws {
        let fs = try ScratchBPFFS()
        let manifests = try ManifestDirectory([
            "a.yaml": jobManifest.replacingOccurrences(of: "type: hash", with: "type: hashh"),
            "b.yaml": jobManifest.replacingOccurrences(of: "name: job-a", with: "name: job-b")
                .replacingOccurrences(of: "root: jobs/A", with: "root: jobs/B")
                .replacingOccurrences(of: "\"0750\"", with: "\"0758\""),
        ])
        let result = try bpftree(["apply", "-f", manifests.path, "--anchor", fs.path + "/missing"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("a.yaml:13:19: spec.entries.lookup.map.type: unknown map type 'hashh'; did you mean 'hash'?"))
        #expect(result.stderr.contains("b.yaml:21:15: spec.entries.stats.directory.mode: '0758' is not an octal mode"))
        #expect(result.stderr.contains("open anchor \(fs.path)/missing: No such file or directory"))
        #expect(try fs.shape().isEmpty)
    }

    @Test func anAnchorNotOnBPFFSIsRefused() throws {
        let manifests = try ManifestDirectory(["job.yaml": jobManifest])
        let plain = manifests.path  // a tmpfs/ext4 directory
        let result = try bpftree(["apply", "-f", manifests.path + "/job.yaml", "--anchor", plain])
        #expect(result.status == 1)
        #expect(result.stderr.contains("not on a bpffs"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: plain) == ["job.yaml"])
        let fdResult = try run(["bash", "-c", "exec 7<\"$1\" && exec \"$2\" diff --anchor-fd 7 -f \"$1/job.yaml\"", "sh",
                                plain, bpftreeExecutable])
        #expect(fdResult.status == 1)
        #expect(fdResult.stderr.contains("fd 7") && fdResult.stderr.contains("not on a bpffs"))
    }

    @Test func missingOrEmptyManifestPathsAreRefused() throws {
        let fs = try ScratchBPFFS()
        let empty = try ManifestDirectory(["notes.txt": "not a manifest"])
        let result = try bpftree(["apply", "-f", empty.path + "/absent.yaml", "-f", empty.path, "--anchor", fs.path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("\(empty.path)/absent.yaml:1:1: no such file or directory"))
        #expect(result.stderr.contains("\(empty.path):1:1: directory holds no *.yaml or *.yml file"))
        #expect(try fs.shape().isEmpty)
    }

    @Test func conflictingOrUnusableAnchorOptionsAreRefused() throws {
        let fs = try ScratchBPFFS()
        let manifests = try ManifestDirectory(["job.yaml": jobManifest])
        let both = try bpftree(["apply", "-f", manifests.path, "--anchor", fs.path, "--anchor-fd", "0"])
        #expect(both.status != 0)
        #expect(both.stderr.contains("give --anchor or --anchor-fd, not both"))
        let notDirectory = try run(["bash", "-c", "exec 7<\"$1\" && exec \"$2\" apply --anchor-fd 7 -f \"$1\"", "sh",
                                    manifests.path + "/job.yaml", bpftreeExecutable])
        #expect(notDirectory.status == 1)
        #expect(notDirectory.stderr.contains("use anchor fd 7: the descriptor is not a directory"))
        #expect(try fs.shape().isEmpty)
    }

    @Test func aRootBeneathAnotherRootConverges() throws {
        let fs = try ScratchBPFFS()
        let manifests = try ManifestDirectory([
            "outer.yaml": manifest("    m: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 1}}", name: "outer", root: "jobs"),
            "inner.yaml": manifest("    n: {map: {type: hash, keySize: 4, valueSize: 4, maxEntries: 1}}", name: "inner"),
        ])
        #expect(try bpftree(["apply", "-f", manifests.path, "--anchor", fs.path]).status == 0)
        #expect(try fs.shape() == ["jobs d 755", "jobs/A d 755", "jobs/A/n f 600", "jobs/m f 600"])
        #expect(try bpftree(["diff", "-f", manifests.path, "--anchor", fs.path]).status == 0)
    }
}
