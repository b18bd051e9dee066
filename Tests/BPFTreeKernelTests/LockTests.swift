import Foundation
import Testing

/// Writers take flock on the anchor; readers do not.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct LockTests {
    @Test func aHeldLockStopsApplyNamingTheHolderAndChangesNothing() throws {
        let fs = try ScratchBPFFS()
        let manifests = try ManifestDirectory(["job.yaml": jobManifest])
        let (holder, pid) = try holdLock(on: fs.path, seconds: 30)
        defer { holder.terminate() }
        let result = try bpftree(["apply", "-f", manifests.path, "--anchor", fs.path, "--lock-timeout", "200ms"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("lock anchor \(fs.path): another writer holds it (pid \(pid)); waited 0.2s (--lock-timeout)"),
                "\(result.output)")
        #expect(try fs.snapshot().isEmpty)
        // A reader takes no lock.
        #expect(try bpftree(["diff", "-f", manifests.path, "--anchor", fs.path]).status == 2)
    }

    @Test func aWaitingWriterGoesOnOnceTheLockIsReleased() throws {
        let fs = try ScratchBPFFS()
        let manifests = try ManifestDirectory(["job.yaml": jobManifest])
        let (holder, _) = try holdLock(on: fs.path, seconds: 0.5)
        let result = try bpftree(["apply", "-f", manifests.path, "--anchor", fs.path, "--lock-timeout", "20s"])
        holder.waitUntilExit()
        #expect(result.status == 0, "\(result.output)")
        #expect(try fs.shape().contains("jobs/A/config f 640"))
    }

    @Test func aBadLockTimeoutIsRefused() throws {
        let fs = try ScratchBPFFS()
        let manifests = try ManifestDirectory(["job.yaml": jobManifest])
        let result = try bpftree(["apply", "-f", manifests.path, "--anchor", fs.path, "--lock-timeout", "soon"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("--lock-timeout"), "\(result.output)")
        #expect(try fs.snapshot().isEmpty)
    }
}
